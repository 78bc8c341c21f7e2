// Java kafka-clients peer for test/interop/java.test.ts.
//
// Compiled at test time with javac against .tmp/interop/java/libs/* (no Maven build).
// Every step prints one JSON object per line on stdout: {"step":..,"ok":true|false,...};
// a failing step prints its exception and the program continues with the next step,
// so the test can tell exactly which operation a broker does not support.
//
//   java Interop admin          <bootstrap> <topic>
//   java Interop produce        <bootstrap> <topicPrefix> <n> <codec>...
//   java Interop consume-assign <bootstrap> <topic> <expectedCount> <startOffset>
//   java Interop consume-group  <bootstrap> <topic> <expectedCount> <groupId>
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DeletedRecords;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class Interop {
  private static final long T = 30; // seconds, per admin future

  public static void main(String[] args) throws Exception {
    String mode = args[0];
    String bootstrap = args[1];
    switch (mode) {
      case "admin": admin(bootstrap, args[2]); break;
      case "produce": produce(bootstrap, args[2], Integer.parseInt(args[3]), Arrays.copyOfRange(args, 4, args.length)); break;
      case "consume-assign": consumeAssign(bootstrap, args[2], Integer.parseInt(args[3]), Long.parseLong(args[4])); break;
      case "consume-group": consumeGroup(bootstrap, args[2], Integer.parseInt(args[3]), args[4]); break;
      default: throw new IllegalArgumentException("unknown mode " + mode);
    }
    System.out.flush();
    System.exit(0);
  }

  // ---------------------------------------------------------------- output

  private interface Step { void run(Map<String, Object> out) throws Exception; }

  private static boolean step(String name, Step s) {
    Map<String, Object> out = new java.util.LinkedHashMap<>();
    out.put("step", name);
    try {
      s.run(out);
      out.put("ok", true);
      emit(out);
      return true;
    } catch (Throwable e) {
      Throwable c = e;
      while ((c instanceof java.util.concurrent.ExecutionException || c instanceof org.apache.kafka.common.KafkaException && c.getCause() != null && c.getMessage() == null) && c.getCause() != null) c = c.getCause();
      out.put("ok", false);
      out.put("error", c.getClass().getName() + ": " + c.getMessage());
      emit(out);
      return false;
    }
  }

  static void emit(Map<String, Object> m) {
    System.out.println(json(m));
    System.out.flush();
  }

  @SuppressWarnings("unchecked")
  static String json(Object o) {
    if (o == null) return "null";
    if (o instanceof Boolean || o instanceof Integer || o instanceof Long) return o.toString();
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

  // ---------------------------------------------------------------- data (same as test/interop/support.ts makeMessages)

  static String key(String tag, int i) { return "k-" + tag + "-" + i; }

  static String value(String tag, int i) {
    return "v:" + tag + ":" + i + ":" + "h\u00e9llo w\u00f6rld \u2713 ".repeat(1 + (i % 7)) + "x".repeat(i * 13);
  }

  // ---------------------------------------------------------------- clients

  static Properties common(String bootstrap) {
    Properties p = new Properties();
    p.put("bootstrap.servers", bootstrap);
    p.put("request.timeout.ms", "15000");
    p.put("default.api.timeout.ms", "25000");
    return p;
  }

  static Admin adminClient(String bootstrap) {
    Properties p = common(bootstrap);
    p.put(AdminClientConfig.RETRIES_CONFIG, "3");
    return Admin.create(p);
  }

  static KafkaProducer<String, String> producer(String bootstrap, String codec, boolean idempotent) {
    Properties p = common(bootstrap);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, Boolean.toString(idempotent));
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
    p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
    p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "40000");
    p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "25000");
    return new KafkaProducer<>(p);
  }

  static KafkaConsumer<String, String> consumer(String bootstrap, String groupId) {
    Properties p = common(bootstrap);
    p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    if (groupId != null) {
      p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
      p.put("group.protocol", "classic");
      p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
      p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
    }
    return new KafkaConsumer<>(p);
  }

  static Map<String, Object> record(ConsumerRecord<String, String> r) {
    Map<String, Object> m = new java.util.LinkedHashMap<>();
    m.put("kind", "record");
    m.put("topic", r.topic());
    m.put("partition", r.partition());
    m.put("offset", r.offset());
    m.put("key", r.key());
    m.put("value", r.value());
    List<Object> hs = new ArrayList<>();
    for (Header h : r.headers()) hs.add(Arrays.asList(h.key(), h.value() == null ? null : new String(h.value(), StandardCharsets.UTF_8)));
    m.put("headers", hs);
    return m;
  }

  // ---------------------------------------------------------------- admin

  static void admin(String bootstrap, String topic) throws Exception {
    try (Admin admin = adminClient(bootstrap)) {
      ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
      TopicPartition tp0 = new TopicPartition(topic, 0);

      step("describeCluster", out -> {
        DescribeClusterResult c = admin.describeCluster();
        out.put("nodes", c.nodes().get(T, TimeUnit.SECONDS).size());
        out.put("controller", c.controller().get(T, TimeUnit.SECONDS).id());
        out.put("clusterId", c.clusterId().get(T, TimeUnit.SECONDS));
      });

      step("createTopics", out -> {
        NewTopic nt = new NewTopic(topic, 3, (short) 1).configs(Map.of("retention.ms", "3600000"));
        admin.createTopics(List.of(nt)).all().get(T, TimeUnit.SECONDS);
      });

      step("describeTopics", out -> {
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get(T, TimeUnit.SECONDS).get(topic);
        out.put("partitions", d.partitions().size());
        List<Object> leaders = new ArrayList<>();
        d.partitions().forEach(p -> leaders.add(p.leader() == null ? -1 : p.leader().id()));
        out.put("leaders", leaders);
      });

      step("describeConfigs", out -> {
        Config c = admin.describeConfigs(List.of(res)).all().get(T, TimeUnit.SECONDS).get(res);
        ConfigEntry e = c.get("retention.ms");
        out.put("retention.ms", e == null ? null : e.value());
        ConfigEntry cp = c.get("cleanup.policy");
        out.put("cleanup.policy", cp == null ? null : cp.value());
      });

      step("incrementalAlterConfigs", out -> {
        AlterConfigOp op = new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET);
        admin.incrementalAlterConfigs(Map.of(res, List.of(op))).all().get(T, TimeUnit.SECONDS);
        // the change reaches the broker's config view asynchronously: poll for it
        long deadline = System.currentTimeMillis() + 15000;
        String v = null;
        while (System.currentTimeMillis() < deadline) {
          ConfigEntry e = admin.describeConfigs(List.of(res)).all().get(T, TimeUnit.SECONDS).get(res).get("retention.ms");
          v = e == null ? null : e.value();
          if ("7200000".equals(v)) break;
          Thread.sleep(300);
        }
        out.put("retention.ms", v);
      });

      step("createPartitions", out -> {
        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get(T, TimeUnit.SECONDS);
        long deadline = System.currentTimeMillis() + 15000;
        int n = 0;
        while (System.currentTimeMillis() < deadline) {
          n = admin.describeTopics(List.of(topic)).allTopicNames().get(T, TimeUnit.SECONDS).get(topic).partitions().size();
          if (n == 4) break;
          Thread.sleep(300);
        }
        out.put("partitions", n);
      });

      step("produceForDeleteRecords", out -> {
        try (KafkaProducer<String, String> p = producer(bootstrap, "none", false)) {
          RecordMetadata last = null;
          for (int i = 0; i < 10; i++) last = p.send(new ProducerRecord<>(topic, 0, key("admin", i), value("admin", i))).get(T, TimeUnit.SECONDS);
          out.put("lastOffset", last.offset());
        }
      });

      step("deleteRecords", out -> {
        Map<TopicPartition, RecordsToDelete> m = Map.of(tp0, RecordsToDelete.beforeOffset(4));
        DeletedRecords d = admin.deleteRecords(m).lowWatermarks().get(tp0).get(T, TimeUnit.SECONDS);
        out.put("lowWatermark", d.lowWatermark());
      });

      step("beginningOffsetsAfterDeleteRecords", out -> {
        try (KafkaConsumer<String, String> c = consumer(bootstrap, null)) {
          out.put("beginning", c.beginningOffsets(List.of(tp0), Duration.ofSeconds(T)).get(tp0));
          out.put("end", c.endOffsets(List.of(tp0), Duration.ofSeconds(T)).get(tp0));
        }
      });

      step("deleteTopics", out -> {
        admin.deleteTopics(List.of(topic)).all().get(T, TimeUnit.SECONDS);
        long deadline = System.currentTimeMillis() + 15000;
        boolean present = true;
        while (System.currentTimeMillis() < deadline) {
          Set<String> names = admin.listTopics().names().get(T, TimeUnit.SECONDS);
          present = names.contains(topic);
          if (!present) break;
          Thread.sleep(300);
        }
        out.put("stillListed", present);
      });
    }
  }

  // ---------------------------------------------------------------- idempotent producer

  static void produce(String bootstrap, String prefix, int n, String[] codecs) {
    for (String codec : codecs) {
      String topic = prefix + "-" + codec;
      step("produce", out -> {
        out.put("codec", codec);
        out.put("topic", topic);
        try (KafkaProducer<String, String> p = producer(bootstrap, codec, true)) {
          List<Future<RecordMetadata>> fs = new ArrayList<>();
          for (int i = 0; i < n; i++) {
            RecordHeaders hs = new RecordHeaders();
            hs.add("h-codec", codec.getBytes(StandardCharsets.UTF_8));
            hs.add("h-idx", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
            fs.add(p.send(new ProducerRecord<>(topic, 0, key(codec, i), value(codec, i), hs)));
          }
          p.flush();
          List<Object> offsets = new ArrayList<>();
          for (Future<RecordMetadata> f : fs) offsets.add(f.get(T, TimeUnit.SECONDS).offset());
          out.put("offsets", offsets);
        }
      });
    }
  }

  // ---------------------------------------------------------------- consumers

  static void consumeAssign(String bootstrap, String topic, int expected, long start) {
    step("consume-assign", out -> {
      TopicPartition tp = new TopicPartition(topic, 0);
      int count = 0;
      try (KafkaConsumer<String, String> c = consumer(bootstrap, null)) {
        c.assign(List.of(tp));
        c.seek(tp, start);
        long deadline = System.currentTimeMillis() + 30000;
        while (count < expected && System.currentTimeMillis() < deadline) {
          ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(500));
          for (ConsumerRecord<String, String> r : rs) {
            emit(record(r));
            count++;
          }
        }
        out.put("position", c.position(tp, Duration.ofSeconds(T)));
      }
      out.put("count", count);
    });
  }

  static void consumeGroup(String bootstrap, String topic, int expected, String groupId) {
    TopicPartition tp = new TopicPartition(topic, 0);
    step("consume-group", out -> {
      int count = 0;
      try (KafkaConsumer<String, String> c = consumer(bootstrap, groupId)) {
        c.subscribe(List.of(topic));
        long deadline = System.currentTimeMillis() + 45000;
        while (count < expected && System.currentTimeMillis() < deadline) {
          ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(500));
          for (ConsumerRecord<String, String> r : rs) {
            emit(record(r));
            count++;
          }
        }
        out.put("assignment", c.assignment().toString());
        out.put("count", count);
        c.commitSync(Duration.ofSeconds(T));
        Map<TopicPartition, OffsetAndMetadata> committed = c.committed(Collections.singleton(tp), Duration.ofSeconds(T));
        OffsetAndMetadata om = committed.get(tp);
        out.put("committed", om == null ? null : om.offset());
      }
    });
    step("consume-group-resume", out -> {
      int count = 0;
      try (KafkaConsumer<String, String> c = consumer(bootstrap, groupId)) {
        c.subscribe(List.of(topic));
        long deadline = System.currentTimeMillis() + 12000;
        while (System.currentTimeMillis() < deadline) {
          ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(500));
          count += rs.count();
          if (!c.assignment().isEmpty() && System.currentTimeMillis() > deadline - 6000) break;
        }
        out.put("assignment", c.assignment().toString());
        out.put("newRecords", count);
        out.put("position", c.assignment().contains(tp) ? c.position(tp, Duration.ofSeconds(T)) : null);
      }
    });
  }

  @SuppressWarnings("unused")
  private static final Map<String, Object> UNUSED = new HashMap<>();
}
