#!/bin/sh
# demo.sh BUILD -- start a local butte cluster and run three instances of a
# small web server on it (docs/examples/hello.json), then show where they
# answer and how to watch butte replace one that dies.
#
# `make demo` runs it as `sh docs/examples/demo.sh build`. A cluster that
# is already up in the default state directory is reused, and an existing
# /hello app is left as it is, so running the demo twice is harmless.
set -eu

build=${1:-build}
shown=$build/butte             # as the user will type it
case $build in
/*) ;;
*) build=$(pwd)/$build ;;
esac
cd "$(dirname "$0")/../.."
butte=$build/butte

if [ ! -x "$butte" ]; then
	echo "demo: $butte is missing; build it with 'make'" >&2
	exit 1
fi

say() { printf '\n== %s\n' "$*"; }

say "starting a local cluster: $shown up"
if "$butte" status >/dev/null 2>&1; then
	echo "a cluster is already up; reusing it"
else
	"$butte" down >/dev/null 2>&1 || true   # clears pid files a crash may have left
	"$butte" up
fi

say "deploying three web servers: $shown app add docs/examples/hello.json"
if "$butte" app show /hello >/dev/null 2>&1; then
	echo "app /hello already exists; leaving it as it is"
else
	"$butte" app add docs/examples/hello.json
fi

want=$("$butte" app show /hello 2>/dev/null |
	sed -n 's/^  "instances": *\([0-9][0-9]*\).*/\1/p' | head -n 1)
want=${want:-3}
say "waiting for $want running instances"
running=0
tries=0
while [ "$tries" -lt 120 ]; do
	running=$("$butte" app show /hello 2>/dev/null |
		sed -n 's/^  "tasksRunning": *\([0-9][0-9]*\).*/\1/p' | head -n 1)
	running=${running:-0}
	if [ "$running" -ge "$want" ]; then
		break
	fi
	tries=$((tries + 1))
	sleep 0.5
done
if [ "$running" -lt "$want" ]; then
	echo "demo: only $running of $want instances are running after 60 s" >&2
	"$butte" status >&2 || true
	"$butte" task list /hello >&2 || true
	echo "the daemons' logs are in the directory 'butte status' shows" >&2
	exit 1
fi
"$butte" task list /hello

say "the instances answer at"
urls=$("$butte" task list /hello | awk '$4 == "TASK_RUNNING" { print "http://" $3 "/" }')
echo "$urls"
first=$(echo "$urls" | head -n 1)

say "curl $first"
curl -s --noproxy '*' --max-time 5 "$first" || echo "(no answer yet; try again in a moment)"

port=${first##*:}
port=${port%/}
pid=$(pgrep -f "httpd -f -p $port " | head -n 1 || true)

relay=$("$butte" status 2>/dev/null | awk '/^relay/ { print $2 }')
master=$("$butte" status 2>/dev/null | awk '/^master/ { print $2 }')

say "what to try next"
hint() { printf '  %-44s # %s\n' "$1" "$2"; }
hint "$shown status" "agents, resources and apps"
hint "$shown app list" "apps: instances wanted and running"
hint "$shown app scale /hello 5" "five instances ('... 1' for one)"
hint "kill -9 ${pid:-<pid>}" "kill the instance on port $port ..."
hint "$shown task list /hello" "... and watch a new one replace it"
hint "$shown app remove /hello" "remove the app and its tasks"
hint "curl $relay/v2/apps" "relay's Marathon v2 API"
hint "curl $master/master/state" "the master's view of the cluster"
echo "  docs/walkthrough.md follows one app through the whole system."

say "stop everything with: $shown down"
