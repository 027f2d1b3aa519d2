package control

// Commands the daemon understands.
var Commands = []string{"ping", "status", "ban", "unban", "banned", "reload", "get"}

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
}
