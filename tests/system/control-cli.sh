#!/usr/bin/env bash
# knit-control's admin command line, end to end against a state directory in
# a temporary directory: exit statuses (0 done, 1 failed, 2 bad usage), the
# messages, --json (parsed with jq), file modes, and several admin commands
# writing at once.  No network: nodes are added the way the server adds
# them, as rows in control.db (schema in docs/control.md).
#
#   $TMP/state/control.key   (0600)    $TMP/state/control.db (0600, WAL)
#            ^                                   ^
#            +------ knit-control key            +------ every other command
#
# Checks are single-quoted strings run by eval inside check(), so that
# variables expand when the check runs, not when it is written.
# shellcheck disable=SC2016,SC2034
set -eu
# shellcheck source=tests/system/lib.sh
source "$(dirname "$0")/lib.sh"

KC=${KNIT_CONTROL:-$ROOT/build/knit-control}
D=$TMP/state
DB=$D/control.db

# kc ARGS...: knit-control against $D; stdout in $OUT, stderr in $ERR, status in $RC.
kc() {
	RC=0
	"$KC" "$@" --state-dir "$D" >"$TMP/out" 2>"$TMP/err" || RC=$?
	OUT=$(cat "$TMP/out") ERR=$(cat "$TMP/err")
}
status_is() { [[ $RC -eq $1 ]] || { echo "exit $RC, want $1; stderr: $ERR"; return 1; }; }
out_has() { grep -qF -- "$1" <<<"$OUT" || { echo "stdout lacks '$1': $OUT"; return 1; }; }
err_is() { [[ $ERR == "$1" ]] || { echo "stderr: '$ERR', want '$1'"; return 1; }; }
jq_is() {
	local got
	got=$(jq -r "$1" <<<"$OUT") || return 1
	[[ $got == "$2" ]] || { echo "jq '$1' gave '$got', want '$2'"; return 1; }
}
mode_is() { [[ $(stat -c %a "$1") == "$2" ]] || { echo "$1: mode $(stat -c %a "$1"), want $2"; return 1; }; }

# A node as knit-control serve registers one (id, name, key byte, address).
add_node() {
	local key; key=$(printf '%02x' "$3"); key=$(printf "$key%.0s" {1..32})
	sqlite3 "$DB" "INSERT INTO nodes (id, name, node_key, ipv4, ipv6, created, expires, approved)
		VALUES ($1, '$2', X'$key', '100.64.0.$1', 'fd00:1::6440:$1', strftime('%s'),
			strftime('%s') + 86400, 0);
		INSERT INTO changes (node_id, kind, at) VALUES ($1, 'node-added', strftime('%s'));"
}

echo "== usage"
RC=0; "$KC" >/dev/null 2>&1 || RC=$?
check "no command: exit 2" status_is 2
RC=0; OUT=$("$KC" --help) || RC=$?
check "--help: exit 0 and every command listed" \
	eval 'status_is 0 && out_has "authkey create" && out_has "node quarantine" && out_has "relay add"'
kc frobnicate
check "unknown command: exit 2 and says so" \
	eval 'status_is 2 && err_is "knit-control: unknown command '"'frobnicate'"' (see knit-control --help)"'
kc nodes --bogus
check "unknown option: exit 2" status_is 2
kc node approve --help
check "node approve --help: exit 0 and its usage" \
	eval 'status_is 0 && out_has "Usage: knit-control node approve ID|NAME"'
kc authkey create --expiry 3x
check "bad --expiry: exit 2 and a clear message" \
	eval 'status_is 2 && grep -qF "invalid --expiry '"'3x'"'" <<<"$ERR"'
check "usage errors create no state directory" test ! -e "$D"

echo "== control key"
kc key
KEY1=$OUT
check "key: a base64 public key" eval '[[ $KEY1 =~ ^[A-Za-z0-9+/]{43}=$ ]]'
check "key: says it generated the key" grep -qF "generated a new control key" "$TMP/err"
check "state directory is 0700" mode_is "$D" 700
check "control.key is 0600" mode_is "$D/control.key" 600
kc key
check "key: the same key again, silently" eval '[[ $OUT == "$KEY1" && -z $ERR ]]'
kc key --json
check "key --json: public_key" jq_is .public_key "$KEY1"
chmod 0644 "$D/control.key"
kc key
check "key: a key file others can read is refused (exit 1)" eval 'status_is 1 && [[ -z $OUT ]]'
chmod 0600 "$D/control.key"

echo "== auth keys"
kc authkey create
AK1=$OUT
check "authkey create: exit 0, knit-auth-ID-SECRET" \
	eval 'status_is 0 && [[ $AK1 =~ ^knit-auth-1-[0-9a-f]{48}$ ]]'
check "control.db is 0600" mode_is "$DB" 600
kc authkey create --reusable --expiry 24h --tag ci --json
check "authkey create --json: fields" \
	eval 'jq_is .id 2 && jq_is .prefix knit-auth-2 && jq_is .reusable true && jq_is .tag ci &&
	      jq_is ".expires - .created" 86400 && jq_is .used 0 && jq_is .revoked false'
AK2=$(jq -r .key <<<"$OUT")
kc authkey create --expiry never --json
check "authkey create --expiry never: expires null" jq_is .expires null
kc authkey list --json
check "authkey list --json: 3 keys, no secret" \
	eval 'jq_is length 3 && jq_is ".[1].reusable" true && ! grep -qF "${AK2#knit-auth-2-}" <<<"$OUT"'
kc authkey list
check "authkey list: a table" eval 'out_has PREFIX && out_has knit-auth-3'
kc authkey revoke "$AK2"
check "authkey revoke KEY: exit 0" eval 'status_is 0 && out_has "auth key knit-auth-2 revoked"'
kc authkey revoke knit-auth-1
check "authkey revoke PREFIX: exit 0" status_is 0
kc authkey revoke 9
check "authkey revoke unknown: exit 1, names the database" \
	eval 'status_is 1 && err_is "knit-control: no auth key 9 in $DB"'
kc authkey list --json
check "revoked keys listed as revoked" \
	eval 'jq_is "[.[] | .revoked] | join(\",\")" "true,true,false"'

echo "== nodes"
add_node 1 alpha 1
add_node 2 beta 2
kc nodes --json
check "nodes --json: pending nodes with every documented field" \
	eval 'jq_is length 2 && jq_is ".[0].status" pending && jq_is ".[0].approved" false &&
	      jq_is ".[0] | keys | join(\",\")" \
	      "approved,authkey_id,created,disco_key,expired,expires,id,ipv4,ipv6,last_seen,name,node_key,quarantined,status"'
kc node approve 1
check "node approve ID" eval 'status_is 0 && [[ $OUT == "node 1 (alpha) approved" ]]'
kc node approve beta
check "node approve NAME" status_is 0
kc nodes --json
check "approved nodes are active" jq_is '[.[] | .status] | join(",")' "active,active"
kc node approve 7
check "node approve unknown: exit 1, names the database" \
	eval 'status_is 1 && err_is "knit-control: no node 7 in $DB"'
kc node quarantine 2 on
check "node quarantine on" eval 'status_is 0 && out_has quarantined'
kc nodes --json
check "quarantined shows" eval 'jq_is ".[1].status" quarantined && jq_is ".[1].quarantined" true'
kc node quarantine 2 off
kc nodes --json
check "node quarantine off" jq_is ".[1].quarantined" false
kc node quarantine 2 maybe
check "node quarantine maybe: exit 2" status_is 2
kc node rename 2 gamma
check "node rename" eval 'status_is 0 && [[ $OUT == "node 2 (beta) renamed to gamma" ]]'
kc node rename 2 alpha
check "node rename to a taken name: exit 1" eval 'status_is 1 && grep -qF "already named alpha" <<<"$ERR"'
kc node rename 2 Not_Valid
check "node rename to an invalid name: exit 2" status_is 2
kc node expire gamma
kc nodes --json
check "node expire" eval 'jq_is ".[1].status" expired && jq_is ".[1].expired" true'
kc nodes
check "nodes: a table with names and addresses" eval 'out_has alpha && out_has 100.64.0.2 && out_has expired'
kc node remove 1
check "node remove" eval 'status_is 0 && [[ $OUT == "node 1 (alpha) removed" ]]'
kc nodes --json
check "removed node is gone" eval 'jq_is length 1 && jq_is ".[0].name" gamma'
kc node remove 1
check "node remove again: exit 1" status_is 1
CHANGES=$(sqlite3 "$DB" "SELECT group_concat(kind, ' ') FROM (SELECT kind FROM changes ORDER BY seq)")
check "every change is in the change log, in order" \
	eval '[[ $CHANGES == "node-added node-added node-changed node-changed node-changed node-changed node-changed node-changed node-removed" ]] || { echo "$CHANGES"; false; }'

echo "== relays"
RKEY=$("$KNIT" genkey | "$KNIT" pubkey)
kc relay add --id 1 --region ams --host 127.0.0.1 --port 8443 --stun-port 3478 --key "$RKEY"
check "relay add" eval 'status_is 0 && [[ $OUT == "relay 1 (ams, 127.0.0.1:8443) added" ]]'
kc relay add --id 1 --region ams --host h --port 1 --stun-port 1 --key "$RKEY"
check "relay add with a taken id: exit 1" status_is 1
kc relay add --id 2 --region fra --host h --port 0 --stun-port 1 --key "$RKEY"
check "relay add with port 0: exit 2" status_is 2
kc relay add --id 2 --region fra
check "relay add without every field: exit 2" status_is 2
kc relays --json
check "relays --json" \
	eval 'jq_is length 1 && jq_is ".[0].host" 127.0.0.1 && jq_is ".[0].port" 8443 &&
	      jq_is ".[0].stun_port" 3478 && jq_is ".[0].key" "$RKEY" && jq_is ".[0].region" ams'
kc relay add --id 3 --region fra --host 127.0.0.3 --port 8443 --stun-port 3478 \
	--stun-alt 127.0.0.4:3479 --key "$("$KNIT" genkey | "$KNIT" pubkey)"
check "relay add --stun-alt" status_is 0
kc relay add --id 4 --region fra --host h --port 1 --stun-port 1 --stun-alt 127.0.0.4 \
	--key "$("$KNIT" genkey | "$KNIT" pubkey)"
check "relay add with a --stun-alt without a port: exit 2" status_is 2
kc relays --json
check "relays --json: stun_alt only where one was given" \
	eval 'jq_is length 2 && jq_is ".[1].stun_alt" 127.0.0.4:3479 && jq_is ".[0].stun_alt" null'
kc relay remove 3
kc relay remove 1
check "relay remove" status_is 0
kc relays --json
check "relays --json after remove: empty" jq_is length 0
kc relay remove 1
check "relay remove again: exit 1" eval 'status_is 1 && err_is "knit-control: no relay 1 in $DB"'

echo "== settings"
kc config --json
check "config --json: key_expiry, ipv4_prefix, ipv6_prefix" \
	eval 'jq_is .key_expiry 15552000 && jq_is .ipv4_prefix 100.64.0.0/10 &&
	      [[ $(jq -r .ipv6_prefix <<<"$OUT") =~ ^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::/48$ ]]'
kc config --key-expiry 30d
check "config --key-expiry 30d" eval 'status_is 0 && out_has "key-expiry   30d"'
kc config --ipv4-prefix 10.1.0.0/16
check "config --ipv4-prefix once nodes exist: exit 1" \
	eval 'status_is 1 && grep -qF "before the first node joins" <<<"$ERR"'

echo "== concurrent writers"
pids=()
for i in $(seq 1 20); do
	"$KC" authkey create --state-dir "$D" >"$TMP/ak.$i" 2>&1 & pids+=($!)
done
bad=0
for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
check "20 authkey create at once: all succeed" eval '[[ $bad -eq 0 ]] || { cat "$TMP"/ak.*; false; }'
kc authkey list --json
check "... and 20 more keys, all distinct" \
	eval 'jq_is length 23 && [[ $(cat "$TMP"/ak.* | sort -u | wc -l) -eq 20 ]]'

echo "== schema"
KNOWN=$(sqlite3 "$DB" "PRAGMA user_version")
sqlite3 "$DB" "PRAGMA user_version = 99"
kc nodes
check "a database from a newer knit-control is refused (exit 1)" \
	eval 'status_is 1 && grep -qF "was written by a newer knit-control" <<<"$ERR"'
sqlite3 "$DB" "PRAGMA user_version = $KNOWN"
kc nodes --json
check "the same database is usable again at the known version" eval 'status_is 0 && jq_is length 1'

summary control-cli
