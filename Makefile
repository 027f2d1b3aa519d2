# portcullis — two commands on a fresh Debian machine:
#   make run    installs what is missing, builds, runs the daemon on configs/ in the foreground
#   make test   installs what is missing, runs go vet and every test (system tests need root)

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)
export DEBIAN_FRONTEND := noninteractive
GO    ?= go
BIN   := bin/portcullis
# Hyperscan (cgo, pinned gohs v1.2.2 links it; gohs has a C++ file, hence g++), PCRE2 (cgo, confirms Hyperscan's hits), nftables for the nft CLI used by tests and
# operators, iproute2 + util-linux for the private network namespaces of the system tests, python3
# to run fail2ban's own engine (unpacked at test time) as the differential tests' oracle, and
# mailutils, the GNU mail that fail2ban's mail-whois actions pipe into (CVE-2021-32749's
# regression test too).
DEB_PACKAGES := libhyperscan-dev libpcre2-dev pkg-config gcc g++ nftables iproute2 util-linux python3 mailutils
# Only make test's: python3-aiosmtpd, the real SMTP server the mail action is tested against,
# groff, which checks the man pages make install puts in place, and Chromium, the browser the
# status page is tested in.
TEST_DEB_PACKAGES := python3-aiosmtpd groff-base chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FUZZTIME ?= 30s

# make install: where things go (PREFIX=/usr for a system package; DESTDIR stages a tree).
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
SBINDIR    := $(PREFIX)/sbin
MANDIR     := $(PREFIX)/share/man
UNITDIR    ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)

# make deb: nfpm (pinned) packs the static binary and the installed tree.
NFPM        := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
DEB_VERSION ?= 0.1.0~dev$(shell git rev-list --count HEAD 2>/dev/null)

.PHONY: all deps build static install install-files deb package-test run test bench bench-compare benchstat profile fuzz hostile fleet-test differential conformance clean

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES) $(EXTRA_DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@command -v $(GO) >/dev/null || { echo "Go is not installed (expected at /usr/local/go)"; exit 1; }
	$(GO) mod download

build: deps
	CGO_ENABLED=1 $(GO) build -o $(BIN) ./cmd/portcullis

# One binary with nothing to link at run time: Hyperscan (libhs.a), PCRE2 and libstdc++ linked
# in statically, Go's own resolver and user lookup (netgo, osusergo) instead of glibc's.
static: deps
	CGO_ENABLED=1 $(GO) build -tags netgo,osusergo -ldflags '-linkmode external -extldflags "-static"' -o bin/portcullis-static ./cmd/portcullis

# The binary, /etc/portcullis (an admin's files are never overwritten), the systemd unit, man
# pages, completions and the logrotate file. Nothing is started: the last lines say how.
install: build install-files

install-files:
	install -D -m 0755 $(BIN) $(DESTDIR)$(SBINDIR)/portcullis
	# fail2ban-client's commands and output for scripts and checks: sbin comes before fail2ban's
	# /usr/bin/fail2ban-client in root's PATH.
	ln -sfn portcullis $(DESTDIR)$(SBINDIR)/fail2ban-client
	mkdir -p $(DESTDIR)$(SYSCONFDIR)/portcullis
	cp -rn configs/. $(DESTDIR)$(SYSCONFDIR)/portcullis/
	mkdir -p $(DESTDIR)$(UNITDIR)
	sed 's|@SBINDIR@|$(SBINDIR)|g' packaging/portcullis.service > $(DESTDIR)$(UNITDIR)/portcullis.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/portcullis.service
	install -D -m 0644 packaging/man/portcullis.8 $(DESTDIR)$(MANDIR)/man8/portcullis.8
	install -D -m 0644 packaging/man/portcullis.conf.5 $(DESTDIR)$(MANDIR)/man5/portcullis.conf.5
	install -D -m 0644 packaging/man/portcullis-jail.conf.5 $(DESTDIR)$(MANDIR)/man5/portcullis-jail.conf.5
	install -D -m 0644 packaging/completion/portcullis.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/portcullis
	install -D -m 0644 packaging/completion/_portcullis $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_portcullis
	install -D -m 0644 packaging/portcullis.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/portcullis
	install -D -m 0644 packaging/portcullis.default $(DESTDIR)$(PREFIX)/share/portcullis/default
	# /etc/default/portcullis (the unit's configuration folder) is the admin's once there; on a
	# host where fail2ban was configured it starts out pointing at /etc/fail2ban.
	if [ ! -e $(DESTDIR)$(SYSCONFDIR)/default/portcullis ]; then \
	  mkdir -p $(DESTDIR)$(SYSCONFDIR)/default; \
	  if [ -z "$(DESTDIR)" ] && [ -f /etc/fail2ban/jail.conf ]; then \
	    sed 's|^PORTCULLIS_CONFIG=.*|PORTCULLIS_CONFIG=/etc/fail2ban|' packaging/portcullis.default > $(SYSCONFDIR)/default/portcullis; \
	  else install -m 0644 packaging/portcullis.default $(DESTDIR)$(SYSCONFDIR)/default/portcullis; fi; \
	fi
	@echo "installed; the daemon runs the configuration /etc/default/portcullis names."
	@echo "To switch from fail2ban (its bans come over at the first start):"
	@echo "  systemctl disable --now fail2ban; systemctl daemon-reload; systemctl enable --now portcullis"

# build/portcullis_VERSION_amd64.deb: the static binary and the installed tree, packed by nfpm.
deb: static
	rm -rf build/deb-root build/*.deb && mkdir -p build
	$(MAKE) -s install-files BIN=bin/portcullis-static DESTDIR=build/deb-root PREFIX=/usr
	PORTCULLIS_VERSION=$(DEB_VERSION) $(NFPM) pkg --config packaging/nfpm.yaml --packager deb --target build/

# The .deb installed with apt into a clean Debian 12 root (debootstrap minbase, cached in .cache),
# its unit's command line started in a private network namespace, answered over its socket, then
# removed (a few minutes: not part of make test).
package-test: deb
	@command -v debootstrap >/dev/null || $(SUDO) apt-get install -y -qq --no-install-recommends debootstrap
	$(SUDO) sh packaging/deb/test.sh build/portcullis_$(DEB_VERSION)_amd64.deb

run: build
	./$(BIN) run -c configs

test: EXTRA_DEB_PACKAGES = $(TEST_DEB_PACKAGES)
test: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# fail2ban's own sample corpus through fail2ban's own filters on our engine (Debian's package is
# downloaded, never installed, into .cache/); prints the per-filter table into conformance.txt.
conformance: deps
	CONFORMANCE_REPORT=$(CURDIR)/conformance.txt $(GO) test -count=1 -run TestFail2banCorpus -v ./matcher | tail -3
	@cat conformance.txt | tail -1

bench: deps
	$(GO) test -p 1 -run '^$$' -bench . -benchmem ./...

# portcullis regex against Debian's fail2ban-regex on the same generated logs, same filter.
bench-compare: deps
	@command -v bc >/dev/null || $(SUDO) apt-get install -y -qq bc
	LINES=$${LINES:-500000} RUNS=$${RUNS:-3} bash bench/compare.sh

# make bench > old.txt; (change something); make bench > new.txt; make benchstat OLD=old.txt NEW=new.txt
benchstat:
	@test -x $(HOME)/go/bin/benchstat || $(GO) install golang.org/x/perf/cmd/benchstat@latest
	$(HOME)/go/bin/benchstat $(OLD) $(NEW)

# CPU and allocation profiles of `portcullis replay` (the shipped jails) over a generated 1M-line
# sshd log with 5% failures; read them with go tool pprof (see the README).
profile: build
	mkdir -p prof
	$(GO) run ./bench/gen -lines $${LINES:-1000000} -fail $${FAIL:-5} -o prof/auth.log
	bin/portcullis replay -c configs --cpuprofile prof/cpu.pprof --memprofile prof/mem.pprof prof/auth.log > /dev/null
	$(GO) tool pprof -top -nodecount 25 bin/portcullis prof/cpu.pprof 2>/dev/null | head -35

fuzz: deps
	$(GO) test -run '^$$' -fuzz FuzzSplit -fuzztime $(FUZZTIME) ./ingest
	$(GO) test -run '^$$' -fuzz FuzzParseSyslog -fuzztime $(FUZZTIME) ./ingest
	$(GO) test -run '^$$' -fuzz FuzzFrameReader -fuzztime $(FUZZTIME) ./ingest
	$(GO) test -run '^$$' -fuzz FuzzJSONFormat -fuzztime $(FUZZTIME) ./ingest
	$(GO) test -run '^$$' -fuzz FuzzParseDate -fuzztime $(FUZZTIME) ./matcher
	$(GO) test -run '^$$' -fuzz FuzzPCREAgreesWithGo -fuzztime $(FUZZTIME) ./matcher
	$(GO) test -run '^$$' -fuzz FuzzScanMissesNothing -fuzztime $(FUZZTIME) ./matcher
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./config
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./fleet
	$(GO) test -run '^$$' -fuzz FuzzBanValue -fuzztime $(FUZZTIME) ./fleet

# portcullis against fail2ban's own engine on generated logs for SEEDS seeds (make test runs one
# or two): failure by failure (./matcher) and ban by ban (./cmd/portcullis, replay against
# fail2ban's server code); a divergence prints the shortest log that still differs. SEED_FROM
# starts at another seed, so a long run can be split.
differential: deps
	DIFF_SEEDS=$${SEEDS:-200} DIFF_SEED_FROM=$${SEED_FROM:-0} $(GO) test -count=1 -timeout 6h -run 'TestDifferential' -v ./matcher ./cmd/portcullis

# The hostile-input suite in long form: every TestHostile* system test repeated HOSTILE_ROUNDS
# times where it repeats (make test runs each a few times), then every fuzzer for FUZZTIME.
hostile: deps
	set -o pipefail; HOSTILE_ROUNDS=$${HOSTILE_ROUNDS:-100} $(GO) test -count=1 -timeout 2h -run 'TestHostile' -v ./cmd/portcullis 2>&1 | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|hostile_test'
	$(MAKE) fuzz FUZZTIME=$${FUZZTIME:-2m}

# The fleet's system test with the issue's 30 s network cut (make test cuts for 5 s).
fleet-test: deps
	PORTCULLIS_FLEET_CUT=30s $(GO) test -count=1 -timeout 10m -run 'TestSystemFleet' -v ./cmd/portcullis

clean:
	rm -rf bin build conformance.txt
