"""A long-running confluent-kafka (librdkafka) consumer-group member for test/interop/groups.test.ts.

  group_member.py <bootstrap> <topic> <group> <strategy> <name> <partitions> <lifetimeSeconds>

strategy is librdkafka's partition.assignment.strategy (range, roundrobin, cooperative-sticky).
Offsets are committed manually (enable.auto.commit=false): synchronously for the revoked partitions
in the revoke callback (eager: every owned partition; cooperative: only the revoked ones), every
second for the owned partitions, and for every owned partition on "leave".

Commands on stdin, one per line:
  leave      commit, stop consuming, close() (LeaveGroup), exit 0
  committed  print the group's committed offsets of every partition
  (EOF)      as leave

Output, one JSON object per line on stdout (t = wall clock, ms):
  {"ev":"start", ...}
  {"ev":"assign"|"revoke"|"lost", "t", "parts": [changed], "owned": [after], "member"}
  {"ev":"release", "t", "owned": []}          before close(): stops owning everything
  {"ev":"rec", "t", "p", "o", "k"}            one per consumed record
  {"ev":"commit"|"commit_error", "why", ...}
  {"ev":"committed", "offsets": {"p": offset}}
  {"ev":"error", "error"}                      consumer errors
  {"ev":"closed"} and exit 0; {"ev":"timeout"} and exit 3 after lifetimeSeconds
"""
import json
import queue
import sys
import threading
import time
import traceback

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def now_ms():
    return round(time.time() * 1000, 3)


def emit(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def main():
    bootstrap, topic, group, strategy, name = sys.argv[1:6]
    partitions = int(sys.argv[6])
    lifetime = float(sys.argv[7])
    deadline = time.time() + lifetime

    commands = queue.Queue()

    def read_stdin():
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("eof")

    threading.Thread(target=read_stdin, daemon=True).start()

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": name,
        "partition.assignment.strategy": strategy,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "socket.timeout.ms": 15000,
        "topic.metadata.refresh.interval.ms": 5000,
    })
    owned = set()
    consumed = {}  # partition -> next offset to commit (last consumed + 1)
    committed = {}  # partition -> last committed offset

    def member_id():
        try:
            return c.memberid()
        except Exception:  # noqa: BLE001
            return None

    def commit(parts, why):
        offs = [TopicPartition(topic, p, consumed[p]) for p in sorted(parts)
                if p in consumed and committed.get(p) != consumed[p]]
        if not offs:
            return
        try:
            res = c.commit(offsets=offs, asynchronous=False)
            errs = [(tp.partition, str(tp.error)) for tp in (res or []) if tp.error is not None]
            if errs:
                emit({"ev": "commit_error", "t": now_ms(), "why": why, "error": errs})
                return
            for tp in offs:
                committed[tp.partition] = tp.offset
            emit({"ev": "commit", "t": now_ms(), "why": why, "offsets": {str(tp.partition): tp.offset for tp in offs}})
        except KafkaException as e:
            emit({"ev": "commit_error", "t": now_ms(), "why": why, "error": str(e)})

    def on_assign(consumer, parts):
        ps = [tp.partition for tp in parts]
        owned.update(ps)
        emit({"ev": "assign", "t": now_ms(), "parts": sorted(ps), "owned": sorted(owned), "member": member_id()})

    def on_revoke(consumer, parts):
        ps = [tp.partition for tp in parts]
        commit(ps, "revoke")
        owned.difference_update(ps)
        for p in ps:
            consumed.pop(p, None)
        emit({"ev": "revoke", "t": now_ms(), "parts": sorted(ps), "owned": sorted(owned), "member": member_id()})

    def on_lost(consumer, parts):
        ps = [tp.partition for tp in parts]
        owned.difference_update(ps)
        for p in ps:
            consumed.pop(p, None)
        emit({"ev": "lost", "t": now_ms(), "parts": sorted(ps), "owned": sorted(owned), "member": member_id()})

    emit({"ev": "start", "t": now_ms(), "name": name, "strategy": strategy, "client": "librdkafka",
          "version": __import__("confluent_kafka").libversion()[0]})
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)

    last_commit = time.time()
    leaving = False
    while not leaving:
        if time.time() > deadline:
            emit({"ev": "timeout", "t": now_ms()})
            sys.stdout.flush()
            # Hard stop: no LeaveGroup, the test failed anyway.
            import os
            os._exit(3)
        try:
            cmd = commands.get_nowait()
        except queue.Empty:
            cmd = None
        if cmd in ("leave", "eof"):
            leaving = True
            break
        if cmd == "committed":
            res = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
            emit({"ev": "committed", "t": now_ms(), "offsets": {str(tp.partition): tp.offset for tp in res}})
        m = c.poll(0.1)
        if m is not None:
            if m.error() is not None:
                if m.error().code() != KafkaError._PARTITION_EOF:
                    emit({"ev": "error", "t": now_ms(), "error": str(m.error())})
            else:
                p = m.partition()
                if p not in owned:
                    emit({"ev": "error", "t": now_ms(), "error": "record from unowned partition %d" % p})
                consumed[p] = m.offset() + 1
                emit({"ev": "rec", "t": now_ms(), "p": p, "o": m.offset(),
                      "k": None if m.key() is None else m.key().decode("utf-8")})
        if time.time() - last_commit >= 1.0:
            last_commit = time.time()
            commit(owned, "periodic")

    commit(owned, "leave")
    owned.clear()
    emit({"ev": "release", "t": now_ms(), "owned": []})
    c.close()
    emit({"ev": "closed", "t": now_ms()})


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        emit({"ev": "fatal", "error": "%s: %s" % (type(e).__name__, e), "trace": traceback.format_exc()[-1500:]})
        sys.exit(2)
