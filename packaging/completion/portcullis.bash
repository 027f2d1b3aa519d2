# bash completion for portcullis: commands, their options, and jail names from the running daemon.
_portcullis_jails() {
	portcullis status 2>/dev/null | sed -n 's/.*Jail list:[[:space:]]*//p' | tr -d ','
}

_portcullis() {
	local cur prev cmd
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	cmd=${COMP_WORDS[1]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "run status ban unban banned fleet reload get set regex replay import-fail2ban version help" -- "$cur"))
		return
	fi
	case "$prev" in
	-c|--db|--config) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	--socket|--from) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	esac
	case "$cmd" in
	run) COMPREPLY=($(compgen -W "-c --socket --db --metrics --workers --poll --check-every --debug --dry-run" -- "$cur")) ;;
	status|reload) COMPREPLY=($(compgen -W "$(_portcullis_jails) --json --socket" -- "$cur")) ;;
	banned) COMPREPLY=($(compgen -W "$(_portcullis_jails) --fleet --json --socket" -- "$cur")) ;;
	fleet) COMPREPLY=($(compgen -W "status --json --socket" -- "$cur")) ;;
	ban|unban)
		if [ "$COMP_CWORD" -eq 2 ]; then
			COMPREPLY=($(compgen -W "$(_portcullis_jails) --all" -- "$cur"))
		fi ;;
	get)
		case "$COMP_CWORD" in
		2) COMPREPLY=($(compgen -W "$(_portcullis_jails)" -- "$cur")) ;;
		3) COMPREPLY=($(compgen -W "banip maxretry findtime bantime ignoreip ignoreself logpath failregex ignoreregex journalmatch actions" -- "$cur")) ;;
		esac ;;
	set)
		case "$COMP_CWORD" in
		2) COMPREPLY=($(compgen -W "$(_portcullis_jails)" -- "$cur")) ;;
		3) COMPREPLY=($(compgen -W "banip unbanip" -- "$cur")) ;;
		esac ;;
	regex) COMPREPLY=($(compgen -f -W "--json --now --config" -- "$cur")) ;;
	replay) COMPREPLY=($(compgen -f -W "-c --json --from --to" -- "$cur")) ;;
	import-fail2ban) COMPREPLY=($(compgen -W "--from --dry-run -c --db --socket --json" -- "$cur")) ;;
	esac
}
complete -F _portcullis portcullis
