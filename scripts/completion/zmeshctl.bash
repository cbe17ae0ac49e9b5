# SPDX-License-Identifier: Apache-2.0
#
# bash completion for zmeshctl: objects, their commands, global and per-command options, the
# pinned map names for `map dump`, interface names for `datapath attach|detach` and --uplink/--veth,
# network namespaces for --netns. The OBJECT COMMAND pairs come from the binary itself
# (`zmeshctl help commands`), so completion never drifts from the command table.
# Install: source this file, or copy it to /etc/bash_completion.d/zmeshctl.

_zmeshctl_words() { # _zmeshctl_words OBJECT: its commands, or every object without OBJECT
	local obj cmd
	while read -r obj cmd; do
		if [ -z "$1" ]; then
			echo "$obj"
		elif [ "$obj" = "$1" ] && [ -n "$cmd" ]; then
			echo "$cmd"
		fi
	done < <("$_zmeshctl_bin" help commands 2>/dev/null) | sort -u
}

_zmeshctl() {
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion || return
	else
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi
	_zmeshctl_bin=${words[0]}
	local globals="-j --json -p --pretty -d --debug -h --help -V --version --pin-dir --netns"
	case $prev in
	--pin-dir | --dir | --file | --cgroup)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--netns | --pod-netns)
		COMPREPLY=($(compgen -W "$(ls /var/run/netns 2>/dev/null)" -- "$cur"))
		return ;;
	--uplink | --veth)
		COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur"))
		return ;;
	--xdp)
		COMPREPLY=($(compgen -W "native generic off" -- "$cur"))
		return ;;
	--ip | --name | --namespace | --service-account | --trust-domain | --node | --rule | \
		--admin)
		return ;;
	esac
	# The words that are not options: OBJECT, COMMAND.
	local i w obj="" cmd=""
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		case $w in
		--pin-dir | --netns | --dir | --file | --cgroup | --uplink | --veth | --xdp | --ip | \
			--name | --namespace | --service-account | --trust-domain | --node | \
			--pod-netns | --rule | --admin)
			((i++)) ;;
		-*) ;;
		*)
			if [ -z "$obj" ]; then obj=$w; elif [ -z "$cmd" ]; then cmd=$w; fi ;;
		esac
	done
	if [[ $cur == -* ]]; then
		local own=""
		case "$obj $cmd" in
		"datapath load") own="--uplink --fail-open --xdp" ;;
		"workload enroll" | "enroll "*) own="--ip --veth --name --namespace --service-account \
			--trust-domain --node --pod-netns --cgroup --no-hbone" ;;
		"workload unenroll" | "unenroll "*) own="--ip --veth" ;;
		"policy set") own="--file --rule" ;;
		"ca init") own="--dir --trust-domain" ;;
		"cert list") own="--admin" ;;
		esac
		COMPREPLY=($(compgen -W "$globals $own" -- "$cur"))
		return
	fi
	if [ -z "$obj" ]; then
		COMPREPLY=($(compgen -W "$(_zmeshctl_words) help" -- "$cur"))
	elif [ -z "$cmd" ]; then
		COMPREPLY=($(compgen -W "$(_zmeshctl_words "$obj") help" -- "$cur"))
	elif [ "$obj" = map ] && [ "$cmd" = dump ]; then
		# The pinned maps of the node (needs the datapath loaded, and root).
		COMPREPLY=($(compgen -W "$("$_zmeshctl_bin" -j map list 2>/dev/null |
			grep -o '"name":"[^"]*"' | cut -d'"' -f4)" -- "$cur"))
	elif [ "$obj" = datapath ] && { [ "$cmd" = attach ] || [ "$cmd" = detach ]; }; then
		COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur"))
	fi
}
complete -F _zmeshctl zmeshctl
