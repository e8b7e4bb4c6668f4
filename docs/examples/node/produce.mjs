// A producer in another language, as an upstream system would write one: validates a document
// event against indexflow's exported JSON Schema (ajv), then publishes it with kafkajs, keyed by
// "<tenant_id>/<document_id>" (kafkajs's default partitioner is Java's murmur2, as indexflow's).
//
//   node produce.mjs <bootstrap> <topic> <schema.json> <event.json> [--no-validate]
//
// Exit 0: published. Exit 2: the event does not match the schema (errors on stderr).
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import { Kafka, logLevel } from "kafkajs";

const [bootstrap, topic, schemaPath, eventPath, flag] = process.argv.slice(2);
const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
const event = JSON.parse(readFileSync(eventPath, "utf8"));

if (flag !== "--no-validate") {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validate = ajv.compile(schema);
  if (!validate(event)) {
    console.error(JSON.stringify(validate.errors));
    process.exit(2);
  }
}

const kafka = new Kafka({ clientId: "node-producer", brokers: [bootstrap], logLevel: logLevel.ERROR });
// Without idempotence: the embedded broker refuses kafkajs's InitProducerId (real Kafka takes it).
const producer = kafka.producer({ idempotent: false, allowAutoTopicCreation: false });
await producer.connect();
await producer.send({
  topic,
  acks: -1,
  messages: [{ key: `${event.tenant_id}/${event.document_id}`, value: JSON.stringify(event) }],
});
await producer.disconnect();
