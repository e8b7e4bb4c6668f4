// A dashboard's feed in another language: reads the state topic, where the projector publishes
// each document's state every time it changes (keyed "<tenant_id>/<document_id>", so one
// document's states arrive in order), keeps each document's newest, and prints every change as
// a JSON line on stdout and the counts by status on stderr.
//
//   node follow-states.mjs <bootstrap> <state topic> [--tenant T] [--exit-after-terminal N]
//
// --exit-after-terminal N: stop once N documents are in a terminal state (completed, error,
// cancelled, deleted); otherwise follow for ever. Each run reads the topic from its beginning in
// a consumer group of its own, as a dashboard rebuilding its view would.
import kafkajs from "kafkajs";
import lz4 from "lz4js";

const { CompressionCodecs, CompressionTypes, Kafka, logLevel } = kafkajs;

// indexflow's producers compress batches with LZ4, which librdkafka's, Java's and Go's clients
// read natively; kafkajs reads only GZIP without a codec, so it is given one (pure JavaScript).
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  compress: async (encoder) => Buffer.from(lz4.compress(encoder.buffer)),
  decompress: async (buffer) => Buffer.from(lz4.decompress(buffer)),
});

const [bootstrap, topic, ...rest] = process.argv.slice(2);
const option = (name) => { const i = rest.indexOf(name); return i >= 0 ? rest[i + 1] : undefined; };
const tenant = option("--tenant");
const exitAfter = Number(option("--exit-after-terminal") ?? 0);
const TERMINAL = new Set(["completed", "error", "cancelled", "deleted"]);

const kafka = new Kafka({ clientId: "state-follower", brokers: [bootstrap], logLevel: logLevel.ERROR });
// sessionTimeout: the embedded broker's first join waits about half of it (Kafka's minimum is 6 s).
const consumer = kafka.consumer({ groupId: `state-follower-${process.pid}-${Date.now()}`, sessionTimeout: 6000,
                                  heartbeatInterval: 1000 });
const latest = new Map(); // "<tenant>/<document>" -> newest state

await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
await consumer.run({
  eachMessage: async ({ message }) => {
    const state = JSON.parse(message.value.toString());
    if (tenant && state.tenant_id !== tenant) return;
    const key = `${state.tenant_id}/${state.document_id}`;
    if ((latest.get(key)?.revision ?? -1) > state.revision) return; // an older revision's last word
    latest.set(key, state);
    const { document_id, dataset_id, revision, status, progress, segment_count, error } = state;
    console.log(JSON.stringify({ document_id, dataset_id, revision, status, progress, segment_count, error }));
    const counts = {};
    for (const s of latest.values()) counts[s.status] = (counts[s.status] ?? 0) + 1;
    console.error(JSON.stringify(counts));
    const terminal = [...latest.values()].filter((s) => TERMINAL.has(s.status)).length;
    if (exitAfter && terminal >= exitAfter) {
      // Not from inside the handler: disconnect waits for the running handler to return.
      setImmediate(async () => { await consumer.disconnect(); process.exit(0); });
    }
  },
});
