#!/usr/bin/env bash
# A local Apache Kafka (KRaft) on loopback for development and CI: one node (broker and
# controller in one JVM), or a cluster of such nodes for fault tests.
#
#   deploy/kafka/kafka.sh fetch                  download Kafka and its runtime dependencies with Maven
#                                                into the cache (once; reused afterwards); prints the cache dir
#   deploy/kafka/kafka.sh start <dir>            format a fresh broker in <dir>, start it in the background,
#                                                wait until it serves metadata; prints 127.0.0.1:<port> last
#   deploy/kafka/kafka.sh stop <dir>             SIGTERM, then SIGKILL after 20 s (every broker of a cluster)
#   deploy/kafka/kafka.sh restart <dir>          stop, then start again on the same data and ports (topics
#                                                and records are kept; `start` would format a fresh one);
#                                                prints the address (a cluster's bootstrap list) last
#   deploy/kafka/kafka.sh start-cluster <dir> [n]
#                                                format and start n (default 3) nodes in <dir>/broker-<i>,
#                                                each broker and controller (a quorum of n voters); topics
#                                                default to replication factor min(n,3) and
#                                                min.insync.replicas 2 (1 when n is 1); waits until every
#                                                broker is registered; prints the bootstrap list
#                                                127.0.0.1:<p1>,127.0.0.1:<p2>,... last
#   deploy/kafka/kafka.sh kill-broker <dir> <i>  SIGKILL node i (1-based) of the cluster in <dir>
#   deploy/kafka/kafka.sh stop-broker <dir> <i>  SIGTERM node i (SIGKILL after 20 s)
#   deploy/kafka/kafka.sh start-broker <dir> <i> start node i again on its data and ports; waits until
#                                                it serves metadata; prints its address last
#   deploy/kafka/kafka.sh pid <dir> [i]          the JVM's pid (of node i of a cluster), e.g. to SIGSTOP it
#
# Environment:
#   KAFKA_VERSION          Kafka version (default 4.4.0, see pom.xml)
#   TRIBUTARY_KAFKA_CACHE  cache dir (default ~/.cache/tributary/kafka-<version>)
#   KAFKA_PORT             client port of `start` (default: a free one); controllers get other free ones
#   KAFKA_HEAP             JVM heap options (default -Xms256m -Xmx512m; each node of a cluster -Xms128m -Xmx384m)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker(s) (default 90)
#   KAFKA_OWNER_PID        if set, the broker(s) stop when that process exits (test runners
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
# do not take it between here and the broker's bind; none of the ports named after it.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    [[ " $* " != *" $p "* ]] && ! port_in_use "$p" && { echo "$p"; return 0; }
  done
  die "no free port found"
}

# A Metadata v4 request for no topics; succeeds when the response lists at least <want>
# (default 1) brokers. A KRaft broker accepts connections before it is unfenced, but lists
# itself only once it is.
metadata_ready() ( # a subshell: the fd and a failed connect stay in it
  local port="$1" want="${2:-1}" hex
  exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
  # size=15 | api_key=3 | version=4 | correlation_id=1 | client_id=null | topics=[] | auto_create=false
  printf '\x00\x00\x00\x0f\x00\x03\x00\x04\x00\x00\x00\x01\xff\xff\x00\x00\x00\x00\x00' >&3
  # size | correlation_id | throttle_time_ms | brokers count
  hex="$(timeout 5 head -c 16 <&3 | od -An -tx1 | tr -d ' \n')" || true
  [[ ${#hex} -eq 32 ]] && (( 16#${hex:24:8} >= want ))
)

kafka_pid() {
  local nd="$1" pid
  [[ -f "$nd/kafka.pid" ]] || return 1
  pid="$(cat "$nd/kafka.pid")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# The node dirs of <dir>: <dir>/broker-<i> for a cluster, <dir> itself for one node.
node_dirs() {
  local dir="$1" i
  if [[ -f "$dir/brokers" ]]; then
    for i in $(seq 1 "$(cat "$dir/brokers")"); do echo "$dir/broker-$i"; done
  else
    echo "$dir"
  fi
}

broker_dir() {
  local dir="$1" i="${2:-}" n
  [[ -n "$dir" && -f "$dir/brokers" ]] || die "'$dir' holds no cluster (start one with start-cluster)"
  n="$(cat "$dir/brokers")"
  [[ "$i" =~ ^[0-9]+$ && "$i" -ge 1 && "$i" -le "$n" ]] || die "broker index must be 1..$n (got '$i')"
  echo "$dir/broker-$i"
}

# server.properties (and log4j2.properties) of one node:
# <node dir> <node id> <client port> <controller port> <voters> <replication factor> <min isr>
write_node_config() {
  local nd="$1" id="$2" port="$3" cport="$4" voters="$5" rf="$6" isr="$7"
  cat >"$nd/server.properties" <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$nd/data
# Replication of auto-created and internal topics ($rf: one per node up to 3), and few
# partitions so that the first consumer group (which creates __consumer_offsets) does not
# wait for 50 partitions.
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
# Groups start consuming at once instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
# A broker that dies is fenced (its partitions get new leaders) after 3 s without a heartbeat
# instead of Kafka's 9 s: failover well inside Tributary's default 30 s gateway lease
# (docs/kafka.md, "Faults").
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
EOF
  cat >"$nd/log4j2.properties" <<'EOF'
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
  echo "$port" >"$nd/port"
}

java_opts() {
  local nd="$1"
  JAVA_OPTS=(${KAFKA_HEAP:-$(cat "$nd/heap")} -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$nd/log4j2.properties" -cp "$LIB/*")
}

# A Kafka cluster id is 16 random bytes, base64url without padding.
new_cluster_id() {
  local id="-"
  # One starting with "-" would be read as an option by StorageTool's argument parser.
  while [[ "$id" == -* ]]; do id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"; done
  echo "$id"
}

format_node() {
  local nd="$1" cluster_id="$2"
  rm -rf "$nd/data" "$nd/kafka.log"
  mkdir -p "$nd/data"
  java_opts "$nd"
  if ! java "${JAVA_OPTS[@]}" kafka.tools.StorageTool format --cluster-id="$cluster_id" \
      -c "$nd/server.properties" >"$nd/format.log" 2>&1; then
    cat "$nd/format.log" >&2
    die "formatting the storage in $nd failed"
  fi
}

# Starts one node's JVM on its server.properties and data, in the background.
launch_node() {
  local nd="$1" pid
  if kafka_pid "$nd" >/dev/null; then die "a broker is already running in $nd (pid $(cat "$nd/kafka.pid")); stop it first"; fi
  port_in_use "$(cat "$nd/port")" && die "port $(cat "$nd/port") of $nd is already in use"
  java_opts "$nd"
  java "${JAVA_OPTS[@]}" kafka.Kafka "$nd/server.properties" </dev/null >>"$nd/kafka.log" 2>&1 &
  pid=$!
  echo "$pid" >"$nd/kafka.pid"
  if [[ -n "${KAFKA_OWNER_PID:-}" ]]; then
    local owner="$KAFKA_OWNER_PID"
    ( trap '' HUP INT
      while kill -0 "$owner" 2>/dev/null && kill -0 "$pid" 2>/dev/null; do sleep 1; done
      kill -TERM "$pid" 2>/dev/null || exit 0
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done
      kill -KILL "$pid" 2>/dev/null ) </dev/null >/dev/null 2>&1 &
    echo "$!" >"$nd/watchdog.pid"
  fi
}

# Waits until the node serves metadata listing at least <brokers> brokers (since <started>).
wait_node() {
  local nd="$1" brokers="$2" started="$3" timeout="${KAFKA_START_TIMEOUT:-90}" pid port
  pid="$(cat "$nd/kafka.pid")"
  port="$(cat "$nd/port")"
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$nd/kafka.log" >&2
      die "Kafka exited during startup (log: $nd/kafka.log)"
    fi
    if port_in_use "$port" && metadata_ready "$port" "$brokers"; then return 0; fi
    if (( SECONDS - started >= timeout )); then
      tail -n 40 "$nd/kafka.log" >&2
      stop_node "$nd" >/dev/null 2>&1 || true
      die "Kafka did not become ready within ${timeout}s (log: $nd/kafka.log)"
    fi
    sleep 0.2
  done
}

# Prepares <dir> (absolute) for a new installation: nothing may run there.
prepare_dir() {
  local dir="$1" nd
  need_java
  cmd_fetch >/dev/null
  for nd in $(node_dirs "$dir"); do
    if kafka_pid "$nd" >/dev/null; then die "a broker is already running in $nd (pid $(cat "$nd/kafka.pid")); stop it first"; fi
  done
}

cmd_start() {
  local dir="${1:-}"
  [[ -n "$dir" ]] || die "usage: kafka.sh start <dir>"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  prepare_dir "$dir"
  rm -rf "$dir/brokers" "$dir"/broker-*
  local port="${KAFKA_PORT:-$(free_port)}" cport
  cport="$(free_port "$port")"
  port_in_use "$port" && die "port $port is already in use"
  echo "-Xms256m -Xmx512m" >"$dir/heap"
  # One node: every topic has one replica.
  write_node_config "$dir" 1 "$port" "$cport" "1@127.0.0.1:$cport" 1 1
  format_node "$dir" "$(new_cluster_id)"
  local started=$SECONDS
  launch_node "$dir"
  wait_node "$dir" 1 "$started"
  echo "127.0.0.1:$port" >"$dir/bootstrap"
  echo "kafka.sh: Kafka $KAFKA_VERSION ready in $((SECONDS - started))s, pid $(cat "$dir/kafka.pid"), log $dir/kafka.log" >&2
  echo "127.0.0.1:$port"
}

cmd_start_cluster() {
  local dir="${1:-}" n="${2:-3}"
  [[ -n "$dir" ]] || die "usage: kafka.sh start-cluster <dir> [n]"
  [[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 && "$n" -le 9 ]] || die "start-cluster: n must be 1..9 (got '$n')"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  prepare_dir "$dir"
  [[ -f "$dir/server.properties" ]] && die "$dir holds a single broker; use another dir"
  local rf=$(( n < 3 ? n : 3 ))
  local isr=$(( rf > 1 ? 2 : 1 ))
  local ports=() cports=() taken=() voters="" bootstrap="" i nd p
  for i in $(seq 1 "$n"); do
    p="$(free_port "${taken[@]}")"; taken+=("$p"); ports+=("$p")
    p="$(free_port "${taken[@]}")"; taken+=("$p"); cports+=("$p")
    voters="${voters:+$voters,}$i@127.0.0.1:${cports[i - 1]}"
    bootstrap="${bootstrap:+$bootstrap,}127.0.0.1:${ports[i - 1]}"
  done
  rm -rf "$dir"/broker-*
  echo "$n" >"$dir/brokers"
  local cluster_id
  cluster_id="$(new_cluster_id)"
  for i in $(seq 1 "$n"); do
    nd="$dir/broker-$i"
    mkdir -p "$nd"
    echo "-Xms128m -Xmx384m" >"$nd/heap"
    write_node_config "$nd" "$i" "${ports[i - 1]}" "${cports[i - 1]}" "$voters" "$rf" "$isr"
    format_node "$nd" "$cluster_id"
  done
  local started=$SECONDS
  for i in $(seq 1 "$n"); do launch_node "$dir/broker-$i"; done
  for i in $(seq 1 "$n"); do wait_node "$dir/broker-$i" "$n" "$started"; done
  echo "$bootstrap" >"$dir/bootstrap"
  echo "kafka.sh: $n Kafka $KAFKA_VERSION brokers (replication factor $rf, min.insync.replicas $isr) ready in $((SECONDS - started))s in $dir" >&2
  echo "$bootstrap"
}

cmd_start_broker() {
  local dir="${1:-}" i="${2:-}" nd
  [[ -n "$dir" && -d "$dir" ]] || die "usage: kafka.sh start-broker <dir> <i>"
  dir="$(cd "$dir" && pwd)"
  nd="$(broker_dir "$dir" "$i")"
  need_java
  local started=$SECONDS
  launch_node "$nd"
  # Serving metadata: it is back in the cluster (its replicas may still be catching up).
  wait_node "$nd" 1 "$started"
  echo "kafka.sh: broker $i ready in $((SECONDS - started))s, pid $(cat "$nd/kafka.pid")" >&2
  echo "127.0.0.1:$(cat "$nd/port")"
}

cmd_restart() {
  local dir="${1:-}" nd brokers=1
  [[ -n "$dir" && ( -f "$dir/server.properties" || -f "$dir/brokers" ) ]] || die "usage: kafka.sh restart <dir> (a dir where start or start-cluster ran)"
  dir="$(cd "$dir" && pwd)"
  need_java
  cmd_stop "$dir" 2>/dev/null
  [[ -f "$dir/brokers" ]] && brokers="$(cat "$dir/brokers")"
  local started=$SECONDS
  for nd in $(node_dirs "$dir"); do launch_node "$nd"; done
  for nd in $(node_dirs "$dir"); do wait_node "$nd" "$brokers" "$started"; done
  echo "kafka.sh: Kafka restarted on its data in $((SECONDS - started))s" >&2
  cat "$dir/bootstrap"
}

# Stops one node: SIG<signal> (default TERM), SIGKILL if it still runs after 20 s.
stop_node() {
  local nd="$1" sig="${2:-TERM}" pid
  if [[ -f "$nd/watchdog.pid" ]]; then
    kill "$(cat "$nd/watchdog.pid")" 2>/dev/null || true
    rm -f "$nd/watchdog.pid"
  fi
  if ! pid="$(kafka_pid "$nd")"; then
    rm -f "$nd/kafka.pid"
    echo "kafka.sh: no broker running in $nd" >&2
    return 0
  fi
  kill -"$sig" "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true # a paused (SIGSTOP) JVM would never handle the signal
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka.sh: broker $pid still running after 20 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$nd/kafka.pid"
}

cmd_stop() {
  local dir="${1:-}" nd pids=()
  [[ -n "$dir" ]] || die "usage: kafka.sh stop <dir>"
  # Every node at once: nodes stopped one by one would wait for the controller quorum the
  # others no longer form.
  for nd in $(node_dirs "$dir"); do stop_node "$nd" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || true; done
}

cmd_pid() {
  local dir="${1:-}" nd
  [[ -n "$dir" ]] || die "usage: kafka.sh pid <dir> [i]"
  if [[ -n "${2:-}" ]]; then nd="$(broker_dir "$dir" "$2")"; else nd="$dir"; fi
  kafka_pid "$nd" || die "no broker running in $nd"
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  restart) cmd_restart "${2:-}" ;;
  start-cluster) cmd_start_cluster "${2:-}" "${3:-3}" ;;
  kill-broker) nd="$(broker_dir "${2:-}" "${3:-}")"; stop_node "$nd" KILL ;;
  stop-broker) nd="$(broker_dir "${2:-}" "${3:-}")"; stop_node "$nd" ;;
  start-broker) cmd_start_broker "${2:-}" "${3:-}" ;;
  pid) cmd_pid "${2:-}" "${3:-}" ;;
  *) echo "usage: $0 fetch | start <dir> | stop <dir> | restart <dir> | start-cluster <dir> [n] | kill-broker|stop-broker|start-broker <dir> <i> | pid <dir> [i]" >&2; exit 2 ;;
esac
