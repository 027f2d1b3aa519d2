package netnstest

import (
	"encoding/json"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// NFTSet reads set from table "inet TABLE" with `nft -j`, as an operator would, and returns its
// elements ("192.0.2.1", or "2001:db8::/64" for a prefix) with their timeouts (0 when none). A
// missing table or set gives nil.
func NFTSet(t testing.TB, table, set string) map[string]time.Duration {
	t.Helper()
	return NFTSetVia(t, nil, table, set)
}

// NFTSetVia is NFTSet with nft run through wrap (ip netns exec NAME: another namespace's set).
func NFTSetVia(t testing.TB, wrap []string, table, set string) map[string]time.Duration {
	t.Helper()
	args := append(append(append([]string{}, wrap...), "nft"), "-j", "list", "set", "inet", table, set)
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return nil
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j output: %v\n%s", err, out)
	}
	res := map[string]time.Duration{}
	for _, obj := range doc.Nftables {
		raw, ok := obj["set"]
		if !ok {
			continue
		}
		var s struct {
			Elem []json.RawMessage `json:"elem"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		for _, e := range s.Elem {
			var wrapped struct {
				Elem struct {
					Val     json.RawMessage `json:"val"`
					Timeout int64           `json:"timeout"`
				} `json:"elem"`
			}
			val, timeout := e, int64(0)
			if json.Unmarshal(e, &wrapped) == nil && wrapped.Elem.Val != nil {
				val, timeout = wrapped.Elem.Val, wrapped.Elem.Timeout
			}
			res[elemString(t, val)] = time.Duration(timeout) * time.Second
		}
	}
	return res
}

func elemString(t testing.TB, raw json.RawMessage) string {
	var plain string
	if json.Unmarshal(raw, &plain) == nil {
		return plain
	}
	var pfx struct {
		Prefix struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
	}
	if err := json.Unmarshal(raw, &pfx); err != nil || pfx.Prefix.Addr == "" {
		t.Fatalf("unexpected nft element %s", raw)
	}
	return pfx.Prefix.Addr + "/" + strconv.Itoa(pfx.Prefix.Len)
}
