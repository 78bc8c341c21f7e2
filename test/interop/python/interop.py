"""confluent-kafka (librdkafka) peer for test/interop/python.test.ts.

Each mode prints JSON lines on stdout: one {"step": ..., "ok": true|false, ...} per step
and {"kind": "record", ...} per consumed record.

  interop.py create-topic   <bootstrap> <topic> <partitions>
  interop.py produce        <bootstrap> <topic> <n> <codec> <tag>
  interop.py consume-assign <bootstrap> <topic> <expected> <start>
  interop.py consume-group  <bootstrap> <topic> <expected> <group>
  interop.py delete-topic   <bootstrap> <topic>
"""
import json
import sys
import time
import traceback

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

T = 30.0


def emit(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def step(name, fn, **extra):
    out = {"step": name, **extra}
    try:
        fn(out)
        out["ok"] = True
    except Exception as e:  # noqa: BLE001 - report every failure as a step result
        out["ok"] = False
        out["error"] = "%s: %s" % (type(e).__name__, e)
        out["trace"] = traceback.format_exc()[-1500:]
    emit(out)
    return out["ok"]


# Same messages as makeMessages() in test/interop/support.ts.
def key(tag, i):
    return "k-%s-%d" % (tag, i)


def value(tag, i):
    return "v:%s:%d:" % (tag, i) + "h\u00e9llo w\u00f6rld \u2713 " * (1 + i % 7) + "x" * (i * 13)


def common(bootstrap):
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": 15000}


def record(m):
    return {
        "kind": "record",
        "topic": m.topic(),
        "partition": m.partition(),
        "offset": m.offset(),
        "key": None if m.key() is None else m.key().decode("utf-8"),
        "value": None if m.value() is None else m.value().decode("utf-8"),
        "headers": [[k, None if v is None else v.decode("utf-8")] for (k, v) in (m.headers() or [])],
    }


def create_topic(bootstrap, topic, partitions):
    def go(out):
        admin = AdminClient(common(bootstrap))
        fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)], request_timeout=T)
        fs[topic].result(timeout=T)
        deadline = time.time() + 15
        n = 0
        while time.time() < deadline:
            md = admin.list_topics(topic=topic, timeout=T)
            t = md.topics.get(topic)
            if t is not None and t.error is None:
                n = len(t.partitions)
                if n == partitions:
                    break
            time.sleep(0.3)
        out["partitions"] = n

    step("create-topic", go, topic=topic)


def produce(bootstrap, topic, n, codec, tag):
    def go(out):
        conf = dict(common(bootstrap))
        conf.update({"acks": "all", "compression.type": codec, "linger.ms": 5, "enable.idempotence": True,
                     "message.timeout.ms": 40000})
        p = Producer(conf)
        results = [None] * n
        errors = []

        def cb(i):
            def done(err, msg):
                if err is not None:
                    errors.append(str(err))
                else:
                    results[i] = [msg.partition(), msg.offset()]
            return done

        for i in range(n):
            p.produce(topic, key=key(tag, i).encode("utf-8"), value=value(tag, i).encode("utf-8"), partition=0,
                      headers=[("h-codec", tag.encode("utf-8")), ("h-idx", str(i).encode("utf-8"))], on_delivery=cb(i))
            p.poll(0)
        left = p.flush(45)
        if left:
            raise RuntimeError("%d messages not delivered after 45 s" % left)
        if errors:
            raise RuntimeError("delivery errors: %s" % errors[:3])
        out["offsets"] = [r[1] for r in results]

    step("produce", go, codec=codec, topic=topic)


def consume_loop(c, expected, seconds):
    count = 0
    deadline = time.time() + seconds
    while count < expected and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error() is not None:
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise RuntimeError("consume error: %s" % m.error())
        emit(record(m))
        count += 1
    return count


def consume_assign(bootstrap, topic, expected, start):
    def go(out):
        conf = dict(common(bootstrap))
        conf.update({"group.id": "py-assign-unused", "enable.auto.commit": False, "enable.auto.offset.store": False})
        c = Consumer(conf)
        try:
            c.assign([TopicPartition(topic, 0, start)])
            out["count"] = consume_loop(c, expected, 30)
        finally:
            c.close()

    step("consume-assign", go, topic=topic)


def consume_group(bootstrap, topic, expected, group):
    def go(out):
        conf = dict(common(bootstrap))
        conf.update({"group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
        c = Consumer(conf)
        try:
            c.subscribe([topic])
            out["count"] = consume_loop(c, expected, 45)
            out["assignment"] = [[tp.topic, tp.partition] for tp in c.assignment()]
            if out["count"] < expected:
                raise RuntimeError("consumed %d/%d records in 45 s (assignment %s)" % (out["count"], expected, out["assignment"]))
            c.commit(asynchronous=False)
            committed = c.committed([TopicPartition(topic, 0)], timeout=T)
            out["committed"] = committed[0].offset
        finally:
            c.close()

    step("consume-group", go, topic=topic, group=group)


def delete_topic(bootstrap, topic):
    def go(out):
        admin = AdminClient(common(bootstrap))
        admin.delete_topics([topic], request_timeout=T)[topic].result(timeout=T)
        deadline = time.time() + 15
        listed = True
        while time.time() < deadline:
            listed = topic in admin.list_topics(timeout=T).topics
            if not listed:
                break
            time.sleep(0.3)
        out["stillListed"] = listed

    step("delete-topic", go, topic=topic)


def main():
    mode, bootstrap = sys.argv[1], sys.argv[2]
    a = sys.argv[3:]
    if mode == "create-topic":
        create_topic(bootstrap, a[0], int(a[1]))
    elif mode == "produce":
        produce(bootstrap, a[0], int(a[1]), a[2], a[3])
    elif mode == "consume-assign":
        consume_assign(bootstrap, a[0], int(a[1]), int(a[2]))
    elif mode == "consume-group":
        consume_group(bootstrap, a[0], int(a[1]), a[2])
    elif mode == "delete-topic":
        delete_topic(bootstrap, a[0])
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
