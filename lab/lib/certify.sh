# shellcheck shell=bash
# knit-lab class / certify: what natprobe must observe, and the proof.

cmd_class() {
	[[ $# -ge 1 ]] || usage
	if [[ ${2:-} == --cgnat ]]; then
		nat_class_double "$1" "$3"
	else
		nat_class "$1"
	fi
}
