#!/bin/bash
# redis-suite.sh runs units of Redis 7.0.15's own test suite (tests/, from
# Debian's source package) against an external server: Debian's
# redis-server first, the baseline, then redis-server-replicated
# (standalone), a fresh server per unit each time. It prints every unit's
# passed, failed and aborted counts side by side, then one line:
#
#	redis-suite: units=N redis_ok=X gomu_ok=Y ratio=Z% gomu_units_aborted=K
#
# where ratio is Y/X: the share of the tests Debian's redis-server passes
# that this server passes too. A unit aborts at its first exception (an
# unknown command, a refused CONFIG SET); its log says which.
#
# Usage: redis-suite.sh SERVER_BINARY [UNIT ...]   (default: the data units)
# Environment: SUITE_DIR (where the sources and logs go, default
# /tmp/gomu-redis-suite), SUITE_PORT (default 6398), SUITE_MODE
# (standalone, the default, or cluster: a 3-replica --local cluster whose
# leader listens on SUITE_PORT and its followers on the next two ports),
# SUITE_TAGS (the harness's --tags, for both servers alike: "-needs:repl"
# leaves out the tests of Redis's own replication, REPLICAOF and the like,
# which a gomu server does not have), SUITE_REUSE_REDIS=1 (keep the
# baseline of an earlier run with the same units and tags, if there is
# one, instead of running Debian's redis-server again).
# The harness takes the 32 ports below SUITE_PORT+10000 for itself, so two
# runs on different SUITE_PORTs do not collide.
set -euo pipefail

server=${1:?usage: redis-suite.sh SERVER_BINARY [UNIT ...]}
shift
units=("$@")
if [ ${#units[@]} -eq 0 ]; then
	units=(unit/type/string unit/type/incr unit/type/list unit/type/list-2 unit/type/list-3
		unit/type/set unit/type/zset unit/type/hash unit/expire unit/keyspace unit/multi
		unit/pubsub unit/bitops unit/bitfield unit/hyperloglog unit/sort unit/info-command
		unit/protocol unit/scan unit/quit unit/type/stream unit/type/stream-cgroups
		unit/scripting unit/functions unit/dump unit/info unit/geo)
fi
dir=${SUITE_DIR:-/tmp/gomu-redis-suite}
port=${SUITE_PORT:-6398}
mode=${SUITE_MODE:-standalone}
tags=()
if [ -n "${SUITE_TAGS:-}" ]; then
	tags=(--tags "$SUITE_TAGS")
fi
case $mode in
standalone) gomu_flags=(--standalone) ;;
cluster) gomu_flags=(--local 3) ;;
*) echo "redis-suite: SUITE_MODE is standalone or cluster, not $mode" >&2; exit 2 ;;
esac
mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"

# Debian's source package of the redis-server installed here (7.0.15 on
# bookworm), fetched once through a deb-src list of our own.
src=$(find "$dir" -maxdepth 1 -type d -name 'redis-7.*' | head -1)
if [ -z "$src" ]; then
	suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
	echo "deb-src http://deb.debian.org/debian $suite main" >"$dir/src.list"
	(cd "$dir" &&
		apt-get -o Dir::Etc::sourcelist="$dir/src.list" -o Dir::Etc::sourceparts=- \
			-o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" update >/dev/null &&
		apt-get -o Dir::Etc::sourcelist="$dir/src.list" -o Dir::Etc::sourceparts=- \
			-o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" source --download-only redis >/dev/null 2>&1 &&
		tar xzf redis_7.*.orig.tar.gz)
	src=$(find "$dir" -maxdepth 1 -type d -name 'redis-7.*' | head -1)
fi
command -v tclsh >/dev/null || { echo "redis-suite: tclsh is needed (apt-get install tcl)" >&2; exit 1; }

# run NAME: every unit against a fresh server of kind NAME; prints
# "unit ok err exception" lines.
run() {
	local name=$1 logs="$dir/$1" u f pid
	mkdir -p "$logs"
	for u in "${units[@]}"; do
		if [ "$name" = redis ]; then
			redis-server --port "$port" --save '' --appendonly no --dir "$logs" \
				--enable-debug-command yes --daemonize yes >/dev/null
		else
			"$server" "${gomu_flags[@]}" --port "$port" --dir "$logs" >"$logs/server.log" 2>&1 &
		fi
		# Ready when it takes a write: a cluster's leader is elected first.
		for _ in $(seq 100); do
			[ "$(redis-cli -p "$port" set gomu:suite:probe 1 2>/dev/null)" = OK ] && break
			sleep 0.1
		done
		redis-cli -p "$port" del gomu:suite:probe >/dev/null 2>&1 || true
		f="$logs/$(echo "$u" | tr / _).log"
		(cd "$src" && timeout 300 tclsh tests/test_helper.tcl --host 127.0.0.1 --port "$port" \
			--clients 1 --baseport $((port + 10000)) --single "$u" "${tags[@]}" >"$f" 2>&1) || true
		echo "$u $(grep -c '32;49mok' "$f") $(grep -c '31;49merr' "$f") $(grep -c '49mexception' "$f")"
		if [ "$name" = redis ]; then
			redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
		else
			pkill -f "$server ${gomu_flags[*]} --port $port" >/dev/null 2>&1 || true
		fi
		for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 || break; sleep 0.1; done
	done
}

if [ "${SUITE_REUSE_REDIS:-}" != 1 ] || [ ! -s "$dir/redis.txt" ] ||
	[ "$(cut -d' ' -f1 "$dir/redis.txt")" != "$(printf '%s\n' "${units[@]}")" ] ||
	[ "$(cat "$dir/redis.tags" 2>/dev/null)" != "${SUITE_TAGS:-}" ]; then
	run redis >"$dir/redis.txt"
	printf '%s' "${SUITE_TAGS:-}" >"$dir/redis.tags"
fi
run gomu >"$dir/gomu.txt"
printf '%-22s %18s %18s\n' unit "redis ok/err/exc" "gomu ok/err/exc"
paste -d' ' "$dir/redis.txt" "$dir/gomu.txt" | awk '{printf "%-22s %18s %18s\n", $1, $2"/"$3"/"$4, $6"/"$7"/"$8}'
paste -d' ' "$dir/redis.txt" "$dir/gomu.txt" | awk '
	{ r += $2; g += $6; n++; if ($8 > 0) a++ }
	END { printf "redis-suite: units=%d redis_ok=%d gomu_ok=%d ratio=%.1f%% gomu_units_aborted=%d\n", n, r, g, (r ? 100*g/r : 0), a }'
