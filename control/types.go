package control

// Commands the daemon understands.
var Commands = []string{"ping", "status", "ban", "unban", "banned", "reload", "get", "import", "stop", "flushlogs", "start", "set", "add"}

// Status is the reply to "status" without a jail.
type Status struct {
	Version string   `json:"version"`
	Uptime  float64  `json:"uptime_seconds"`
	Jails   []string `json:"jails"`
}

// JailStatus is the reply to "status JAIL".
type JailStatus struct {
	Name            string   `json:"name"`
	Files           []string `json:"files"`
	CurrentlyFailed int      `json:"currently_failed"`
	TotalFailed     uint64   `json:"total_failed"`
	CurrentlyBanned int      `json:"currently_banned"`
	TotalBanned     uint64   `json:"total_banned"`
	Banned          []string `json:"banned"`
	Regexes         []string `json:"regex_modes"`
	Actions         []string `json:"actions"` // each action and how it runs
}

// Result is the outcome for one address of "ban" or "unban".
type Result struct {
	Addr  string `json:"addr"`
	Jail  string `json:"jail,omitempty"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Banned is one active ban in the reply to "banned".
type Banned struct {
	Jail   string `json:"jail"`
	Prefix string `json:"prefix"`
	Start  int64  `json:"start"`
	End    int64  `json:"end"` // 0 = forever
	Count  uint32 `json:"count"`
	Origin string `json:"origin,omitempty"` // banned --fleet: the node that decided it
}

// Import is the reply to "import PATH [--dry-run]": what came over from fail2ban's database.
type Import struct {
	From   string `json:"from"`
	DryRun bool   `json:"dry_run,omitempty"`
	// Bans in force taken over (into the store and the firewall), of them IPv6 and permanent.
	Bans      int `json:"bans"`
	IPv6      int `json:"ipv6"`
	Permanent int `json:"permanent"`
	Already   int `json:"already_banned"` // banned here already: kept as they were
	Expired   int `json:"expired"`        // over at the import: their ban counts only
	History   int `json:"history"`        // addresses whose ban counts came over
	// UnknownJails counts the bans of jails not enabled here, by jail: not taken (their counts are).
	UnknownJails map[string]int `json:"unknown_jails,omitempty"`
	Protected    []string       `json:"protected,omitempty"` // "jail address: why", not taken
	Skipped      []string       `json:"skipped,omitempty"`   // rows that could not be read
}
