// A long-running Java KafkaConsumer (group.protocol=classic) group member for
// test/interop/groups.test.ts; the Java twin of test/interop/python/group_member.py
// (same arguments, commands and JSON lines, plus "gen", the generation, on callbacks).
//
//   java GroupMember <bootstrap> <topic> <group> <strategy> <name> <partitions> <lifetimeSeconds>
//
// strategy: range | roundrobin | sticky | cooperative-sticky (the assignor's protocol name).
// Offsets are committed manually: synchronously for the revoked partitions in
// onPartitionsRevoked, every second for the owned partitions, and on "leave".
//
// stdin: "leave" (or EOF): commit, close() (LeaveGroup), exit 0; "committed": print the
// committed offsets of every partition.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.LinkedBlockingQueue;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.consumer.StickyAssignor;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

public final class GroupMember {
  static String topic;
  static KafkaConsumer<String, String> c;
  static final Set<Integer> owned = new TreeSet<>();
  static final Map<Integer, Long> consumed = new HashMap<>(); // partition -> next offset to commit
  static final Map<Integer, Long> committed = new HashMap<>();

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    topic = args[1];
    String group = args[2];
    String strategy = args[3];
    String name = args[4];
    int partitions = Integer.parseInt(args[5]);
    long deadline = System.currentTimeMillis() + (long) (Double.parseDouble(args[6]) * 1000);

    LinkedBlockingQueue<String> commands = new LinkedBlockingQueue<>();
    Thread reader = new Thread(() -> {
      try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
        String line;
        while ((line = in.readLine()) != null) commands.add(line.trim());
      } catch (Exception e) {
        // fall through: EOF
      }
      commands.add("eof");
    });
    reader.setDaemon(true);
    reader.start();

    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    p.put(ConsumerConfig.CLIENT_ID_CONFIG, name);
    p.put("group.protocol", "classic");
    p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor(strategy));
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
    p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
    p.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, "5000");
    p.put("request.timeout.ms", "15000");
    p.put("default.api.timeout.ms", "20000");
    c = new KafkaConsumer<>(p);

    Map<String, Object> start = ev("start");
    start.put("name", name);
    start.put("strategy", strategy);
    start.put("client", "java");
    emit(start);

    c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
      @Override public void onPartitionsAssigned(Collection<TopicPartition> parts) {
        for (TopicPartition tp : parts) owned.add(tp.partition());
        emitChange("assign", parts);
      }
      @Override public void onPartitionsRevoked(Collection<TopicPartition> parts) {
        Set<Integer> ps = new HashSet<>();
        for (TopicPartition tp : parts) ps.add(tp.partition());
        commit(ps, "revoke");
        owned.removeAll(ps);
        for (Integer x : ps) consumed.remove(x);
        emitChange("revoke", parts);
      }
      @Override public void onPartitionsLost(Collection<TopicPartition> parts) {
        for (TopicPartition tp : parts) {
          owned.remove(tp.partition());
          consumed.remove(tp.partition());
        }
        emitChange("lost", parts);
      }
    });

    long lastCommit = System.currentTimeMillis();
    while (true) {
      if (System.currentTimeMillis() > deadline) {
        emit(ev("timeout"));
        Runtime.getRuntime().halt(3); // no LeaveGroup: the test failed anyway
      }
      String cmd = commands.poll();
      if ("leave".equals(cmd) || "eof".equals(cmd)) break;
      if ("committed".equals(cmd)) {
        Set<TopicPartition> all = new HashSet<>();
        for (int i = 0; i < partitions; i++) all.add(new TopicPartition(topic, i));
        Map<TopicPartition, OffsetAndMetadata> got = c.committed(all, Duration.ofSeconds(15));
        Map<String, Object> offs = new LinkedHashMap<>();
        for (int i = 0; i < partitions; i++) {
          OffsetAndMetadata om = got.get(new TopicPartition(topic, i));
          offs.put(Integer.toString(i), om == null ? -1001L : om.offset());
        }
        Map<String, Object> e = ev("committed");
        e.put("offsets", offs);
        emit(e);
      }
      try {
        ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(100));
        for (ConsumerRecord<String, String> r : rs) {
          if (!owned.contains(r.partition())) {
            Map<String, Object> e = ev("error");
            e.put("error", "record from unowned partition " + r.partition());
            emit(e);
          }
          consumed.put(r.partition(), r.offset() + 1);
          Map<String, Object> e = ev("rec");
          e.put("p", r.partition());
          e.put("o", r.offset());
          e.put("k", r.key());
          emit(e);
        }
      } catch (Exception ex) {
        Map<String, Object> e = ev("error");
        e.put("error", ex.toString());
        emit(e);
      }
      if (System.currentTimeMillis() - lastCommit >= 1000) {
        lastCommit = System.currentTimeMillis();
        commit(new HashSet<>(owned), "periodic");
      }
    }
    commit(new HashSet<>(owned), "leave");
    owned.clear();
    Map<String, Object> rel = ev("release");
    rel.put("owned", new ArrayList<>());
    emit(rel);
    c.close(Duration.ofSeconds(20));
    emit(ev("closed"));
    System.exit(0);
  }

  static String assignor(String strategy) {
    switch (strategy) {
      case "range": return RangeAssignor.class.getName();
      case "roundrobin": return RoundRobinAssignor.class.getName();
      case "sticky": return StickyAssignor.class.getName();
      case "cooperative-sticky": return CooperativeStickyAssignor.class.getName();
      default: throw new IllegalArgumentException("unknown strategy " + strategy);
    }
  }

  static void commit(Set<Integer> parts, String why) {
    Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
    Map<String, Object> shown = new LinkedHashMap<>();
    for (Integer p : new TreeSet<>(parts)) {
      Long next = consumed.get(p);
      if (next == null || next.equals(committed.get(p))) continue;
      offs.put(new TopicPartition(topic, p), new OffsetAndMetadata(next));
      shown.put(p.toString(), next);
    }
    if (offs.isEmpty()) return;
    try {
      c.commitSync(offs, Duration.ofSeconds(15));
      for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offs.entrySet()) committed.put(e.getKey().partition(), e.getValue().offset());
      Map<String, Object> e = ev("commit");
      e.put("why", why);
      e.put("offsets", shown);
      emit(e);
    } catch (Exception ex) {
      Map<String, Object> e = ev("commit_error");
      e.put("why", why);
      e.put("error", ex.toString());
      emit(e);
    }
  }

  static void emitChange(String kind, Collection<TopicPartition> parts) {
    Map<String, Object> e = ev(kind);
    List<Object> ps = new ArrayList<>();
    for (Integer x : new TreeSet<>(parts.stream().map(TopicPartition::partition).toList())) ps.add(x);
    e.put("parts", ps);
    e.put("owned", new ArrayList<Object>(owned));
    try {
      e.put("gen", c.groupMetadata().generationId());
      e.put("member", c.groupMetadata().memberId());
    } catch (Exception ex) {
      // not available
    }
    emit(e);
  }

  static Map<String, Object> ev(String kind) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("ev", kind);
    java.time.Instant now = java.time.Instant.now();
    m.put("t", now.getEpochSecond() * 1000.0 + now.getNano() / 1e6);
    return m;
  }

  static synchronized void emit(Map<String, Object> m) {
    System.out.println(json(m));
    System.out.flush();
  }

  @SuppressWarnings("unchecked")
  static String json(Object o) {
    if (o == null) return "null";
    if (o instanceof Boolean || o instanceof Integer || o instanceof Long) return o.toString();
    if (o instanceof Double) return String.format(java.util.Locale.ROOT, "%.3f", (Double) o);
    if (o instanceof Map) {
      StringBuilder b = new StringBuilder("{");
      boolean first = true;
      for (Map.Entry<String, Object> e : ((Map<String, Object>) o).entrySet()) {
        if (!first) b.append(',');
        first = false;
        b.append(json(e.getKey())).append(':').append(json(e.getValue()));
      }
      return b.append('}').toString();
    }
    if (o instanceof Collection) {
      StringBuilder b = new StringBuilder("[");
      boolean first = true;
      for (Object x : (Collection<Object>) o) {
        if (!first) b.append(',');
        first = false;
        b.append(json(x));
      }
      return b.append(']').toString();
    }
    String s = o.toString();
    StringBuilder b = new StringBuilder("\"");
    for (int i = 0; i < s.length(); i++) {
      char ch = s.charAt(i);
      if (ch == '"' || ch == '\\') b.append('\\').append(ch);
      else if (ch < 0x20 || ch > 0x7e) b.append(String.format("\\u%04x", (int) ch));
      else b.append(ch);
    }
    return b.append('"').toString();
  }
}
