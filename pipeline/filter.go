package pipeline

import (
	"io"
	"time"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/ingest"
	"github.com/portcullis/portcullis/matcher"
)

// FilterOptions configure RunFilter.
type FilterOptions struct {
	Now     time.Time // "now" for year inference
	Journal bool      // logtype = journal: every line is a dateless journal message at Now
	Fields  bool      // describe failures with their captured fields; false: counts only
	// Ignored passes to each too the lines an ignoreregex dropped (Result.Ignored) and the helper
	// lines a failregex matched without a failure (Result.NoFail).
	Ignored bool
}

// FilterResult sums up RunFilter.
type FilterResult struct {
	Ignored uint64 // lines an ignoreregex dropped
	Dates   []matcher.DateHit
	Source  *ingest.SourceStats
}

// RunFilter runs one filter over a log on the stage chain's matching stage (fail2ban-regex's job;
// no windows, no bans) and calls each for every block with the failures counted in it. The block
// and the results are the chain's, valid during the call; an error from each stops the run.
func RunFilter(f *config.Filter, r io.Reader, o FilterOptions, each func(b *ingest.Block, found []matcher.Result) error) (FilterResult, error) {
	cfg := &config.Config{Jails: []*config.Jail{{Name: f.Name, Filter: f}}}
	stg, err := newStages(cfg, stageOptions{Now: func() time.Time { return o.Now }, CacheDir: UserCacheDir(), MatchOnly: true})
	if err != nil {
		return FilterResult{}, err
	}
	defer stg.m.Close()
	w, err := stg.m.NewWorker()
	if err != nil {
		return FilterResult{}, err
	}
	if o.Fields {
		w.Collect = true
	} else {
		w.CollectCounts()
	}
	if o.Journal {
		w.SetFixedTime(o.Now)
	}
	w.CollectIgnored = o.Ignored
	c := stg.newChain(w, wallClock{}, nil)
	defer c.close()
	var eachErr error
	c.admit = func(b *ingest.Block, evs []matcher.Event) []matcher.Event {
		eachErr = each(b, w.Details)
		return evs
	}
	src := &ingest.Source{Name: "regex", Jails: ingest.NewJailSet(0), Stats: &ingest.SourceStats{}}
	var stop error // from matching or from each, as opposed to reading
	readErr := ingest.ReadAll(r, src, nil, func(b *ingest.Block) error {
		w.Details = w.Details[:0]
		stop = c.process(b)
		ingest.PutBlock(b)
		if stop == nil {
			stop = eachErr
		}
		return stop
	})
	res := FilterResult{Ignored: stg.m.Stats[0].Ignored.Load(), Dates: stg.m.DateHits(0), Source: src.Stats}
	if stop != nil {
		return res, stop
	}
	return res, readErr
}
