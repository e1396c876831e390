#!/usr/bin/env bash
# A local single-node Apache Kafka (KRaft, broker + controller in one JVM) for development and CI.
#
#   deploy/kafka/kafka.sh fetch          download Kafka and its runtime dependencies with Maven
#                                        into the cache (once; reused afterwards); prints the cache dir
#   deploy/kafka/kafka.sh start <dir>    format a fresh broker in <dir>, start it in the background,
#                                        wait until it serves metadata; prints 127.0.0.1:<port> last
#   deploy/kafka/kafka.sh stop <dir>     SIGTERM, then SIGKILL after 20 s
#
# Environment:
#   KAFKA_VERSION          Kafka version (default 4.4.0, see pom.xml)
#   TRIBUTARY_KAFKA_CACHE  cache dir (default ~/.cache/tributary/kafka-<version>)
#   KAFKA_PORT             client port (default: a free one); the controller gets another free one
#   KAFKA_HEAP             JVM heap options (default -Xms256m -Xmx512m)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (default 90)
#   KAFKA_OWNER_PID        if set, the broker is stopped when that process exits (test runners
#                          that die without calling stop do not leave a JVM behind)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
CACHE="${TRIBUTARY_KAFKA_CACHE:-${HOME:-/root}/.cache/tributary/kafka-${KAFKA_VERSION}}"
LIB="$CACHE/lib"
INSTALL_HINT="install them with: apt-get update && apt-get install -y openjdk-17-jre-headless maven"

die() { echo "kafka.sh: $*" >&2; exit 1; }

need_java() {
  command -v java >/dev/null 2>&1 || die "java (17 or newer) is not installed; $INSTALL_HINT"
  local major
  major="$(java -version 2>&1 | sed -nE '1s/.*version "([0-9]+).*/\1/p')"
  [[ -n "$major" && "$major" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17 or newer (found: $(java -version 2>&1 | head -1)); $INSTALL_HINT"
}

cmd_fetch() {
  need_java
  if [[ -f "$LIB/.complete" ]]; then echo "$CACHE"; return 0; fi
  command -v mvn >/dev/null 2>&1 || die "mvn (Maven) is not installed; $INSTALL_HINT"
  mkdir -p "$CACHE"
  # Download into a private dir and rename it into place, so concurrent fetches cannot mix.
  local tmp="$CACHE/lib.tmp.$$" out="$CACHE/fetch.$$.log"
  rm -rf "$tmp"
  local t0=$SECONDS
  echo "kafka.sh: downloading Kafka $KAFKA_VERSION and its runtime dependencies with Maven (pom.xml) into $LIB; once, reused afterwards" >&2
  if ! mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -Dkafka.version="$KAFKA_VERSION" -DoutputDirectory="$tmp" >"$out" 2>&1; then
    tail -n 40 "$out" >&2
    rm -rf "$tmp" "$out"
    die "mvn could not fetch Kafka $KAFKA_VERSION (see above)"
  fi
  rm -f "$out"
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "mvn finished but $tmp holds no kafka_2.13 jar"
  echo "kafka.sh: fetched $(find "$tmp" -name '*.jar' | wc -l) jars ($(du -sh "$tmp" | cut -f1)) in $((SECONDS - t0)) s" >&2
  touch "$tmp/.complete"
  mv -T "$tmp" "$LIB" 2>/dev/null || rm -rf "$tmp" # another fetch won the race: keep its copy
  echo "$CACHE"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port nobody listens on, below the Linux ephemeral range (32768+) so outgoing connections
# do not take it between here and the broker's bind.
free_port() {
  local p avoid="${1:-0}"
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    [[ "$p" != "$avoid" ]] && ! port_in_use "$p" && { echo "$p"; return 0; }
  done
  die "no free port found"
}

# A Metadata v4 request for no topics; succeeds when the response lists at least one broker.
# A KRaft broker accepts connections before it is unfenced, but lists itself only once it is.
metadata_ready() ( # a subshell: the fd and a failed connect stay in it
  local port="$1" hex
  exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
  # size=15 | api_key=3 | version=4 | correlation_id=1 | client_id=null | topics=[] | auto_create=false
  printf '\x00\x00\x00\x0f\x00\x03\x00\x04\x00\x00\x00\x01\xff\xff\x00\x00\x00\x00\x00' >&3
  # size | correlation_id | throttle_time_ms | brokers count
  hex="$(timeout 5 head -c 16 <&3 | od -An -tx1 | tr -d ' \n')" || true
  [[ ${#hex} -eq 32 && "${hex:24:8}" != "00000000" ]]
)

kafka_pid() {
  local dir="$1" pid
  [[ -f "$dir/kafka.pid" ]] || return 1
  pid="$(cat "$dir/kafka.pid")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cmd_start() {
  local dir="${1:-}"
  [[ -n "$dir" ]] || die "usage: kafka.sh start <dir>"
  need_java
  cmd_fetch >/dev/null
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if kafka_pid "$dir" >/dev/null; then die "a broker is already running in $dir (pid $(cat "$dir/kafka.pid")); stop it first"; fi

  local port="${KAFKA_PORT:-$(free_port)}" cport
  cport="$(free_port "$port")"
  port_in_use "$port" && die "port $port is already in use"
  rm -rf "$dir/data"
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
# One node: every internal topic has one replica, and few partitions so that the first
# consumer group (which creates __consumer_offsets) does not wait for 50 partitions.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Groups start consuming at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
EOF
  cat >"$dir/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
  local java_opts=(${KAFKA_HEAP:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$dir/log4j2.properties" -cp "$LIB/*")

  # A Kafka cluster id is 16 random bytes, base64url without padding.
  local cluster_id
  # One starting with "-" would be read as an option by StorageTool's argument parser.
  cluster_id="-"
  while [[ "$cluster_id" == -* ]]; do cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"; done
  if ! java "${java_opts[@]}" kafka.tools.StorageTool format --cluster-id="$cluster_id" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1; then
    cat "$dir/format.log" >&2
    die "formatting the storage in $dir failed"
  fi

  java "${java_opts[@]}" kafka.Kafka "$dir/server.properties" </dev/null >"$dir/kafka.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/kafka.pid"
  if [[ -n "${KAFKA_OWNER_PID:-}" ]]; then
    local owner="$KAFKA_OWNER_PID"
    ( trap '' HUP INT
      while kill -0 "$owner" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
      kill -TERM "$pid" 2>/dev/null || exit 0
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done
      kill -KILL "$pid" 2>/dev/null ) </dev/null >/dev/null 2>&1 &
    echo "$!" >"$dir/watchdog.pid"
  fi

  local timeout="${KAFKA_START_TIMEOUT:-90}" started=$SECONDS
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$dir/kafka.log" >&2
      die "Kafka exited during startup (log: $dir/kafka.log)"
    fi
    if port_in_use "$port" && metadata_ready "$port"; then break; fi
    if (( SECONDS - started >= timeout )); then
      tail -n 40 "$dir/kafka.log" >&2
      cmd_stop "$dir" >/dev/null 2>&1 || true
      die "Kafka did not become ready within ${timeout}s (log: $dir/kafka.log)"
    fi
    sleep 0.2
  done
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  echo "kafka.sh: Kafka $KAFKA_VERSION ready in $((SECONDS - started))s, pid $pid, log $dir/kafka.log" >&2
  echo "127.0.0.1:$port"
}

cmd_stop() {
  local dir="${1:-}" pid
  [[ -n "$dir" ]] || die "usage: kafka.sh stop <dir>"
  if [[ -f "$dir/watchdog.pid" ]]; then
    kill "$(cat "$dir/watchdog.pid")" 2>/dev/null || true
    rm -f "$dir/watchdog.pid"
  fi
  if ! pid="$(kafka_pid "$dir")"; then
    rm -f "$dir/kafka.pid"
    echo "kafka.sh: no broker running in $dir" >&2
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka.sh: broker $pid still running after 20 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/kafka.pid"
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  *) echo "usage: $0 fetch | start <dir> | stop <dir>" >&2; exit 2 ;;
esac
