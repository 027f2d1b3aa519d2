package sink

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis/portcullis/config"
)

// webhookClient is shared by every webhook action; each request carries its action's timeout.
var webhookClient = &http.Client{}

// postWebhook sends one ban or unban to w.URL as w.Preset says: generic is the ban as JSON, the
// chat presets a line of text in the field each service reads. Log lines travel only inside JSON
// strings (or ntfy's body), never in a header or the URL. A status other than 2xx is an error,
// which the queue retries.
func postWebhook(ctx context.Context, w *config.Webhook, unban bool, c Change, timeout time.Duration) error {
	op := "ban"
	if unban {
		op = "unban"
	}
	tags := TagsOf(c, false)
	text := fmt.Sprintf("portcullis on %s: %s %s in jail %s", tags["sh-hostname"], op, tags["ip"], c.Ban.Jail)
	if !unban {
		text += fmt.Sprintf(" after %s failures, for %s (ban %s)", tags["failures"], banLength(c), tags["bancount"])
	}
	body, contentType, chat := chatBody(w.Preset, text)
	if !chat {
		g := banJSON(c, !unban)
		g["op"], g["host"] = op, tags["fq-hostname"]
		body, _ = json.Marshal(g)
	}
	return deliver(ctx, w, body, contentType, "portcullis: "+op+" "+tags["ip"], timeout)
}

// chatBody is text as a chat preset sends it; false for the generic preset, which sends JSON of
// the bans instead.
func chatBody(preset, text string) ([]byte, string, bool) {
	var field map[string]string
	switch preset {
	case "slack":
		field = map[string]string{"text": text}
	case "discord":
		field = map[string]string{"content": text}
	case "matrix":
		field = map[string]string{"msgtype": "m.text", "body": text}
	case "ntfy":
		return []byte(text), "text/plain; charset=utf-8", true
	default:
		return nil, "application/json", false
	}
	body, _ := json.Marshal(field)
	return body, "application/json", true
}

// deliver posts body to w.URL, signed when w.Secret is set; a status other than 2xx is an error.
func deliver(ctx context.Context, w *config.Webhook, body []byte, contentType, title string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "portcullis")
	if w.Preset == "ntfy" {
		req.Header.Set("Title", title)
		req.Header.Set("Tags", "no_entry")
	}
	if w.Secret != "" {
		m := hmac.New(sha256.New, []byte(w.Secret))
		m.Write(body)
		req.Header.Set("X-Portcullis-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	resp, err := webhookClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s: %s", w.URL, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// banJSON is a ban as the generic preset sends it.
func banJSON(c Change, withEvidence bool) map[string]any {
	tags := TagsOf(c, false)
	g := map[string]any{"jail": c.Ban.Jail, "ip": tags["ip"], "start": c.Ban.Start, "end": c.Ban.End, "count": c.Ban.Count, "bantime": -1}
	if c.Ban.End != 0 {
		g["bantime"] = c.Ban.End - c.Ban.Start
	}
	if ev := c.Evidence; ev != nil && withEvidence {
		g["failures"], g["matches"] = ev.Failures, ev.Matches
	}
	return g
}

// digestText is the text of a digest: a line per ban.
func digestText(bans []Change) string {
	host := TagsOf(Change{}, false)["sh-hostname"]
	var b strings.Builder
	fmt.Fprintf(&b, "portcullis on %s: %d bans", host, len(bans))
	for _, c := range bans {
		t := TagsOf(c, false)
		fmt.Fprintf(&b, "\n%s in %s after %s failures, for %s (ban %s)", t["ip"], c.Ban.Jail, t["failures"], banLength(c), t["bancount"])
	}
	return b.String()
}

// postDigest sends every ban of an interval in one post: generic {"op": "digest", "host", "bans":
// [...]}, the chat presets their text with a line per ban.
func postDigest(ctx context.Context, w *config.Webhook, bans []Change, timeout time.Duration) error {
	body, contentType, chat := chatBody(w.Preset, digestText(bans))
	if !chat {
		list := make([]map[string]any, len(bans))
		for i, c := range bans {
			list[i] = banJSON(c, true)
		}
		body, _ = json.Marshal(map[string]any{"op": "digest", "host": TagsOf(Change{}, false)["fq-hostname"], "bans": list})
	}
	return deliver(ctx, w, body, contentType, fmt.Sprintf("portcullis: %d bans", len(bans)), timeout)
}

func banLength(c Change) string {
	if c.Ban.End == 0 {
		return "ever"
	}
	return (time.Duration(c.Ban.End-c.Ban.Start) * time.Second).String() + " (" + strconv.FormatInt(c.Ban.End-c.Ban.Start, 10) + " s)"
}
