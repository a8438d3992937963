#!/usr/bin/env bash
# The command lines of knit and knitd, as a user meets them: key commands
# that agree with wg(8), and clear errors (file, line, problem; exit 1) for a
# bad configuration.  No network: nothing here creates an interface.
set -eu
cd "$(dirname "$0")/../.."
KNIT=${KNIT:-build/knit}
KNITD=${KNITD:-build/knitd}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0 failed=0
check() { # name, command...
	local name=$1; shift
	if "$@"; then
		echo "PASS $name"; passed=$((passed + 1))
	else
		echo "FAIL $name"; failed=$((failed + 1))
	fi
}

# Keys: knit and wg must derive the same public keys from each other's keys.
key_agrees_with_wg() {
	local priv; priv=$("$KNIT" genkey)
	[[ ${#priv} -eq 44 ]] &&
	[[ $(echo "$priv" | "$KNIT" pubkey) == "$(echo "$priv" | wg pubkey)" ]] &&
	priv=$(wg genkey) &&
	[[ $(echo "$priv" | "$KNIT" pubkey) == "$(echo "$priv" | wg pubkey)" ]]
}
genpsk_is_random() {
	local a b; a=$("$KNIT" genpsk); b=$("$KNIT" genpsk)
	[[ ${#a} -eq 44 && $a != "$b" ]]
}
pubkey_rejects_garbage() {
	! echo "not a key" | "$KNIT" pubkey 2>"$tmp/err" && grep -q 'invalid private key' "$tmp/err"
}
genkey_warns_world_readable() {
	(umask 022; "$KNIT" genkey >"$tmp/key" 2>"$tmp/err") && grep -q 'world accessible' "$tmp/err"
}
check "knit pubkey agrees with wg pubkey" key_agrees_with_wg
check "knit genpsk gives distinct 32-byte keys" genpsk_is_random
check "knit pubkey rejects garbage" pubkey_rejects_garbage
check "knit genkey warns about a world-readable file" genkey_warns_world_readable

# knitd: a bad file is refused before anything is created.
bad_config() { # expected-message, file-content
	local expect=$1 content=$2 rc=0
	printf '%s' "$content" >"$tmp/bad.conf"
	chmod 600 "$tmp/bad.conf"
	"$KNITD" --interface knitcli0 --wg-config "$tmp/bad.conf" 2>"$tmp/err" || rc=$?
	[[ $rc -eq 1 ]] && grep -qF "$expect" "$tmp/err" ||
		{ echo "  got exit $rc: $(cat "$tmp/err")"; return 1; }
	! ip link show knitcli0 >/dev/null 2>&1
}
key=$("$KNIT" genkey)
check "knitd names file and line of a bad key" \
	bad_config "bad.conf:3:" $'[Interface]\nListenPort = 1\nPrivateKey = nope\n'
check "knitd names an unknown key" \
	bad_config "bad.conf:2:" $'[Interface]\nFrobnicate = 1\n'
check "knitd refuses a peer without a public key" \
	bad_config "bad.conf:" $'[Interface]\nPrivateKey = '"$key"$'\n[Peer]\nAllowedIPs = 10.0.0.0/24\n'
missing_file() {
	local rc=0
	"$KNITD" --interface knitcli0 --wg-config "$tmp/none.conf" 2>"$tmp/err" || rc=$?
	[[ $rc -eq 1 ]] && grep -qF "$tmp/none.conf" "$tmp/err"
}
check "knitd names a missing file" missing_file
usage_errors() {
	! "$KNITD" 2>/dev/null && ! "$KNITD" --interface waytoolonginterfacename 2>/dev/null &&
	"$KNITD" --help | grep -q -- '--wg-config'
}
check "knitd usage errors and --help" usage_errors

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
