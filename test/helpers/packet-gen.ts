// Random MQTT packets for the fuzz test: valid packets of every type (3.1, 3.1.1 and 5.0, with
// properties) built with mqtt-packet, and mutations of them. Everything is driven by a seeded PRNG.
import * as mp from 'mqtt-packet';

/** mulberry32: small, fast, good enough to drive a fuzzer. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rand {
  constructor(readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** A number that likes boundaries. */
  num(max: number): number {
    return this.pick([0, 1, 2, max, max - 1, this.int(max + 1), this.int(256), this.int(65536)].filter((x) => x >= 0 && x <= max));
  }
}

const TOPICS = ['fz/a', 'fz/a/b', 'fz/b/c/d', '$SYS/fz', 'fz/ü/ñ', 'fz', '/', 'fz//x', 'a'.repeat(300)];
const FILTERS = [...TOPICS, 'fz/#', 'fz/+', '+/+', '#', '+', 'fz/+/b/#', '$share/g/fz/a', '$queue/fz', 'fz/a#', 'fz/#/x', ''];
const REASONS = [0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x80, 0x81, 0x82, 0x83, 0x87, 0x8b, 0x8d, 0x8e, 0x91, 0x92, 0x93, 0x95, 0x97, 0x99];

function str(r: Rand): string {
  return r.pick(['', 'x', 'fz-ü', 'a b', '\u{1F600}', 'z'.repeat(r.int(70))]);
}

function userProps(r: Rand): mp.UserProperties | undefined {
  if (!r.chance(0.3)) return undefined;
  const out: mp.UserProperties = {};
  for (let i = r.int(3); i >= 0; i--) out[str(r) || 'k'] = r.chance(0.3) ? [str(r), str(r)] : str(r);
  return out;
}

function publishProps(r: Rand): Record<string, unknown> | undefined {
  if (!r.chance(0.6)) return undefined;
  const p: Record<string, unknown> = {};
  if (r.chance(0.3)) p.payloadFormatIndicator = r.chance(0.5);
  if (r.chance(0.3)) p.messageExpiryInterval = r.num(0xffffffff);
  if (r.chance(0.3)) p.topicAlias = r.num(70000) || 1;
  if (r.chance(0.2)) p.responseTopic = r.pick(TOPICS);
  if (r.chance(0.2)) p.correlationData = r.bytes(r.int(16));
  if (r.chance(0.2)) p.contentType = str(r);
  if (r.chance(0.2)) p.subscriptionIdentifier = r.num(268435455) || 1;
  const u = userProps(r);
  if (u) p.userProperties = u;
  return p;
}


/** One valid packet of a random type, as mqtt-packet would send it. */
export function validPacket(r: Rand, v: 3 | 4 | 5, type?: mp.PacketCmd): mp.Packet {
  const v5 = v === 5;
  const cmd =
    type ??
    r.pick<mp.PacketCmd>([
      'publish', 'publish', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'subscribe', 'unsubscribe',
      'pingreq', 'disconnect', 'connect', 'connack', 'suback', 'unsuback', 'pingresp', 'auth',
    ]);
  const messageId = r.range(1, 65535);
  const reasonCode = r.pick(REASONS);
  const props = (o: Record<string, unknown>): Record<string, unknown> | undefined => (v5 && r.chance(0.5) ? o : undefined);
  switch (cmd) {
    case 'connect': {
      const p: Record<string, unknown> = {
        cmd,
        protocolVersion: v,
        protocolId: v === 3 ? 'MQIsdp' : 'MQTT',
        clientId: r.chance(0.1) && v !== 3 ? '' : `fz-${r.int(64)}-${r.int(7)}`,
        clean: r.chance(0.6),
        keepalive: r.pick([0, 1, 5, 60, 65535]),
      };
      if (r.chance(0.3)) p.username = str(r);
      if (p.username !== undefined && r.chance(0.5)) p.password = r.bytes(r.int(10));
      if (r.chance(0.3)) {
        p.will = {
          topic: r.pick(TOPICS),
          payload: r.bytes(r.int(20)),
          qos: r.int(3),
          retain: r.chance(0.3),
          properties: props({ willDelayInterval: r.num(10), messageExpiryInterval: r.num(100), contentType: str(r), userProperties: userProps(r) }),
        };
      }
      if (v5) {
        p.properties = props({
          sessionExpiryInterval: r.pick([0, 1, 60, 0xffffffff]),
          receiveMaximum: r.pick([1, 2, 10, 65535]),
          maximumPacketSize: r.pick([20, 100, 1000, 268435455]),
          topicAliasMaximum: r.num(65535),
          requestResponseInformation: r.chance(0.5),
          requestProblemInformation: r.chance(0.5),
          userProperties: userProps(r),
          ...(r.chance(0.05) ? { authenticationMethod: 'SCRAM', authenticationData: r.bytes(4) } : {}),
        });
      }
      return p as unknown as mp.Packet;
    }
    case 'publish': {
      const qos = r.int(3) as mp.QoS;
      return {
        cmd,
        topic: r.pick(TOPICS),
        payload: r.bytes(r.chance(0.1) ? r.int(3000) : r.int(40)),
        qos,
        retain: r.chance(0.2),
        dup: qos > 0 && r.chance(0.1),
        messageId: qos > 0 ? messageId : undefined,
        properties: v5 ? publishProps(r) : undefined,
      } as mp.Packet;
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return { cmd, messageId, reasonCode: v5 ? reasonCode : undefined, properties: props({ reasonString: str(r), userProperties: userProps(r) }) } as mp.Packet;
    case 'subscribe': {
      const subscriptions = [];
      for (let i = r.int(4); i >= 0; i--) {
        subscriptions.push({ topic: r.pick(FILTERS), qos: r.int(3) as mp.QoS, ...(v5 ? { nl: r.chance(0.3), rap: r.chance(0.3), rh: r.int(3) } : {}) });
      }
      return { cmd, messageId, subscriptions, properties: props({ subscriptionIdentifier: r.num(268435455) || 1, userProperties: userProps(r) }) } as mp.Packet;
    }
    case 'unsubscribe': {
      const unsubscriptions = [];
      for (let i = r.int(3); i >= 0; i--) unsubscriptions.push(r.pick(FILTERS));
      return { cmd, messageId, unsubscriptions, properties: props({ userProperties: userProps(r) }) } as mp.Packet;
    }
    case 'connack':
      return { cmd, sessionPresent: r.chance(0.5), returnCode: r.int(6), reasonCode: v5 ? reasonCode : undefined, properties: props({ receiveMaximum: 5 }) } as mp.Packet;
    case 'suback':
      return { cmd, messageId, granted: [0, 1, 2, 0x80].slice(0, r.range(1, 4)) } as mp.Packet;
    case 'unsuback':
      return { cmd, messageId, ...(v5 ? { reasonCodes: [0, 0x11] } : {}) } as unknown as mp.Packet;
    case 'pingreq':
    case 'pingresp':
      return { cmd } as mp.Packet;
    case 'disconnect':
      return { cmd, reasonCode: v5 ? r.pick([0, 4, 0x80, 0x8e]) : undefined, properties: props({ sessionExpiryInterval: r.pick([0, 10]), reasonString: str(r), userProperties: userProps(r) }) } as mp.Packet;
    case 'auth':
      return { cmd, reasonCode: r.pick([0, 0x18, 0x19]), properties: props({ authenticationMethod: 'SCRAM', authenticationData: r.bytes(8), reasonString: str(r) }) } as mp.Packet;
  }
}

export function encode(r: Rand, v: 3 | 4 | 5, type?: mp.PacketCmd): Buffer {
  // Some random combinations are refused by the generator; try again with another packet.
  for (let i = 0; ; i++) {
    try {
      return mp.generate(validPacket(r, v, i < 20 ? type : 'pingreq'), { protocolVersion: v });
    } catch (err) {
      if (i > 50) throw err;
    }
  }
}

/** Mutates a valid packet; `other` supplies material for splicing and concatenation. */
export function mutate(r: Rand, b: Buffer, other: () => Buffer): Buffer {
  const out = Buffer.from(b);
  switch (r.int(11)) {
    case 0: {
      // flip 1-8 bits
      for (let i = r.range(1, 8); i > 0; i--) out[r.int(out.length)]! ^= 1 << r.int(8);
      return out;
    }
    case 1:
      // truncate
      return out.subarray(0, r.int(out.length));
    case 2: {
      // random remaining-length bytes (1-4 of them, any continuation bits)
      const n = r.range(1, 4);
      return Buffer.concat([out.subarray(0, 1), r.bytes(n), out.subarray(Math.min(out.length, 2))]);
    }
    case 3:
      // concatenation: a packet, then another fused to it with a byte dropped between them
      return Buffer.concat([out.subarray(0, out.length - r.int(2)), other()]);
    case 4:
      // random garbage
      return r.bytes(r.range(1, 64));
    case 5: {
      // random fixed-header flags
      out[0] = (out[0]! & 0xf0) | r.int(16);
      return out;
    }
    case 6: {
      // random packet type, body kept
      out[0] = (r.int(16) << 4) | (out[0]! & 0x0f);
      return out;
    }
    case 7: {
      // overwrite a run of bytes in the body
      const at = r.int(out.length);
      r.bytes(Math.min(out.length - at, r.range(1, 6))).copy(out, at);
      return out;
    }
    case 8: {
      // insert or delete bytes
      const at = r.int(out.length + 1);
      return r.chance(0.5) ? Buffer.concat([out.subarray(0, at), r.bytes(r.range(1, 4)), out.subarray(at)]) : Buffer.concat([out.subarray(0, at), out.subarray(at + r.range(1, 4))]);
    }
    case 9: {
      // a length prefix inside the body set to a boundary value
      if (out.length < 4) return out;
      const at = r.range(2, out.length - 2);
      out.writeUInt16BE(r.pick([0, 1, 0x7fff, 0xffff, out.length - at]), at);
      return out;
    }
    default: {
      // splice: the header of this packet, the tail of another
      const o = other();
      return Buffer.concat([out.subarray(0, r.range(1, out.length)), o.subarray(r.int(o.length))]);
    }
  }
}

