package matcher

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portcullis/portcullis/internal/f2bcorpus"
)

func TestZZAgree(t *testing.T) {
	names := os.Getenv("AGREE")
	if names == "" {
		t.Skip()
	}
	loc, _ := time.LoadLocation("Europe/Berlin")
	corpusLoc = loc
	for _, name := range strings.Split(names, ",") {
		r := runCorpusFilter(name, ownFilterDir, f2bcorpus.LogsDir(), "", loc)
		fmt.Printf("== %s %d/%d\n", name, r.passed, r.checks)
		for _, n := range r.notes {
			fmt.Println("  ", n)
		}
	}
}
