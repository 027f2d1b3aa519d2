// Package samples reads the sample logs of our filter library (testdata/filters/NAME.log, in
// fail2ban's "# failJSON:" convention) for the tests that stuff attacker-written fields.
package samples

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

var failJSON = regexp.MustCompile(`^#+ ?failJSON:(.+)$`)

// Injection is a sample line a filter must count, with the fields in it an attacker writes: the
// sample's "user" and the strings its "inject" lists.
type Injection struct {
	Line    string
	Targets []string
}

// Injections reads the counted samples of a sample log that name an attacker-written field.
func Injections(path string) ([]Injection, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	var out []Injection
	for i := 0; i+1 < len(lines); i++ {
		m := failJSON.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		var fail map[string]any
		if json.Unmarshal([]byte(m[1]), &fail) != nil || fail["match"] != true {
			continue
		}
		in := Injection{Line: lines[i+1]}
		if u, ok := fail["user"].(string); ok && u != "" {
			in.Targets = append(in.Targets, u)
		}
		if list, ok := fail["inject"].([]any); ok {
			for _, x := range list {
				in.Targets = append(in.Targets, fmt.Sprint(x))
			}
		}
		if len(in.Targets) > 0 {
			out = append(out, in)
		}
	}
	return out, nil
}
