import { randomBytes } from 'node:crypto';
import { ApiError, ApiReply, ApiRequest, ApiRoute, Cluster, listParam, NodeSnapshot, page, paging } from '@tributary/api';
import { checkTopicFilter, checkTopicName, Message, MessageProperties, newMessage, QoS, topicMatches } from '@tributary/mqtt';
import { parseShared, SubscriptionOptions } from '@tributary/router';
import { clientNotFound, ClusterQueries, ListPart } from './api-cluster';
import type { Broker } from './broker/broker';
import { Channel } from './channel/channel';
import { ClientIndex } from './client-index';
import type { Gateway } from './gateway';
import type { Session } from './session/session';

const rfc3339 = (ms: number | null | undefined): string | null => (ms ? new Date(ms).toISOString() : null);
const pagingQuery = { page: { type: 'integer', minimum: 1 }, limit: { type: 'integer', minimum: 1, maximum: 10000 } };
const strOrList = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };
const subBody = { type: 'object', required: ['topic'], properties: { topic: { type: 'string', minLength: 1 }, qos: { type: 'integer', enum: [0, 1, 2] }, nl: { type: 'integer', enum: [0, 1] }, rap: { type: 'integer', enum: [0, 1] }, rh: { type: 'integer', enum: [0, 1, 2] } } };
const pubBody = {
  type: 'object',
  required: ['topic', 'payload'],
  properties: {
    topic: { type: 'string' },
    payload: { type: 'string' },
    payload_encoding: { type: 'string', enum: ['plain', 'base64'] },
    encoding: { type: 'string', enum: ['plain', 'base64'] },
    qos: { type: 'integer', enum: [0, 1, 2] },
    retain: { type: 'boolean' },
    clientid: { type: 'string' },
    properties: {
      type: 'object',
      properties: {
        payload_format_indicator: { type: 'integer', enum: [0, 1] },
        message_expiry_interval: { type: 'integer', minimum: 0 },
        response_topic: { type: 'string' },
        correlation_data: { type: 'string' },
        user_properties: { type: 'object', additionalProperties: { type: 'string' } },
        content_type: { type: 'string' },
      },
    },
  },
};
const clientItem = { type: 'object', properties: Object.fromEntries(['clientid', 'username', 'node', 'ip_address', 'listener', 'proto_name', 'created_at', 'connected_at'].map((k) => [k, { type: ['string', 'null'] }])) };

/** The broker as the routes read it, and the gateway when this process has listeners. */
export interface BrokerApiSource {
  nodeName: string;
  broker(): Broker | undefined;
  gateway(): Gateway | undefined;
  /** Scaled out: the other processes (the `nodes` table), so the routes answer for the installation. */
  cluster?: Cluster;
}

const clientsQuery = { ...pagingQuery, node: { type: 'string' }, username: strOrList, clientid: strOrList, ip_address: { type: 'string' }, conn_state: { type: 'string', enum: ['connected', 'idle', 'disconnected'] }, clean_start: { type: 'boolean' }, proto_ver: { type: 'integer' }, like_clientid: { type: 'string' }, like_username: { type: 'string' } };
const subsQuery = { ...pagingQuery, node: { type: 'string' }, clientid: { type: 'string' }, topic: { type: 'string' }, qos: { type: 'integer', enum: [0, 1, 2] }, share_group: { type: 'string' }, match_topic: { type: 'string' } };
const upto = { upto: { type: 'integer', minimum: 0 } };

/**
 * The broker introspection routes of the HTTP API, EMQX's paths and shapes: clients (listed,
 * kicked, subscribed and unsubscribed as if the client had), subscriptions, topics, publish,
 * retained and delayed messages, listeners, alarms. They live in the gateway package because
 * they read its sessions and channels. Scaled out (`src.cluster`), the client, subscription and
 * topic routes answer for the installation: the other gateways are asked for their part
 * (api-cluster.ts, and the peer-only `/cluster/...` routes here); with no other gateway they read
 * this process only, as a single node does. Where no broker runs (`tributary api`) the other
 * routes go to a gateway. Lazy getters, because the API is wired before the broker starts.
 */
export function brokerRoutes(src: BrokerApiSource): ApiRoute[] {
  let index: ClientIndex | undefined;
  const broker = (): Broker => {
    const b = src.broker();
    if (!b) throw new ApiError(503, 'SERVICE_UNAVAILABLE', 'this process runs no broker');
    return b;
  };
  const sessionOf = (id: string): Session => {
    const s = broker().session(id);
    if (!s) throw clientNotFound();
    return s;
  };
  const sortedIds = (): readonly string[] => (index ??= new ClientIndex(broker())).sorted();
  const client = (s: Session): Record<string, unknown> => clientObject(s, src.nodeName);
  const sub = (clientid: string, topic: string, o: SubscriptionOptions): Record<string, unknown> => ({ clientid, node: src.nodeName, topic, qos: o.qos, nl: o.noLocal ? 1 : 0, rap: o.retainAsPublished ? 1 : 0, rh: o.retainHandling, durable: false });
  const cluster = src.cluster && new ClusterQueries(src.cluster);
  const hasBroker = (): boolean => src.broker() !== undefined;
  /** The other gateways this request asks: none on a single node, for a peer's call, or without a cluster. */
  const peers = (req: ApiRequest): NodeSnapshot[] => cluster?.peersFor(req) ?? [];
  /** EMQX's `?node=`: a list of one node only. */
  const nodeParam = (req: ApiRequest): string | undefined => (typeof req.query.node === 'string' && req.query.node !== '' ? req.query.node : undefined);
  /** The gateways a list asks, and whether this process's own part counts, for `?node=`. */
  const listScope = (req: ApiRequest): { others: NodeSnapshot[]; here: boolean } => {
    const node = nodeParam(req);
    const all = peers(req);
    if (node === undefined) return { others: all, here: hasBroker() };
    return { others: all.filter((n) => n.node === node), here: hasBroker() && node === src.nodeName };
  };

  /** The client ids matching the filters, in order: how many, and those from `from` to `to` (exclusive). */
  const matching = (q: Record<string, unknown>, from: number, to: number): ListPart<string> => {
    const ids = sortedIds();
    const test = clientFilter(q);
    if (!test) return { count: ids.length, data: ids.slice(from, to) };
    // Filtered: a scan in client-id order.
    const b = broker();
    const data: string[] = [];
    let count = 0;
    for (const id of ids) {
      const s = b.session(id);
      if (!s || !test(s)) continue;
      if (count >= from && count < to) data.push(id);
      count++;
    }
    return { count, data };
  };
  const objects = (ids: readonly string[]): Record<string, unknown>[] => {
    const b = broker();
    const out: Record<string, unknown>[] = [];
    for (const id of ids) {
      const s = b.session(id);
      if (s) out.push(client(s));
    }
    return out;
  };
  const subscriptions = (q: Record<string, unknown>): Record<string, unknown>[] => {
    const b = broker();
    const out: Record<string, unknown>[] = [];
    const ids = typeof q.clientid === 'string' ? [q.clientid] : sortedIds();
    for (const id of ids) {
      const s = b.session(id);
      if (!s) continue;
      for (const [topic, o] of s.subscriptions) {
        if (q.topic !== undefined && topic !== q.topic) continue;
        if (q.qos !== undefined && o.qos !== q.qos) continue;
        const shared = parseShared(topic);
        if (q.share_group !== undefined && shared?.group !== q.share_group) continue;
        if (typeof q.match_topic === 'string' && !topicMatches(q.match_topic, shared ? shared.filter : topic)) continue;
        out.push(sub(id, topic, o));
      }
    }
    return out;
  };
  const topics = (q: Record<string, unknown>): Record<string, unknown>[] =>
    [...routeFilters(broker())]
      .filter((t) => q.topic === undefined || t === q.topic)
      .sort()
      .map((topic) => ({ topic, node: src.nodeName }));
  const part = <T>(items: T[], n: number): ListPart<T> => ({ count: items.length, data: items.slice(0, n) });

  /**
   * A route on one client: answered here when this process holds the session; scaled out, by the
   * gateway that does (404 CLIENTID_NOT_FOUND when none does).
   */
  const forClient = (suffix: string, method: ApiRoute['method'], local: (s: Session, req: ApiRequest) => ApiReply | Promise<ApiReply>) => async (req: ApiRequest): Promise<ApiReply> => {
    const s = src.broker()?.session(req.params.clientid!);
    if (s) return local(s, req);
    const others = peers(req);
    if (others.length === 0) return local(sessionOf(req.params.clientid!), req);
    const reply = await cluster!.onOwner(others, req, method, suffix);
    if (!reply) throw clientNotFound();
    return reply;
  };

  const subscribe = async (s: Session, body: { topic: string; qos?: number; nl?: number; rap?: number; rh?: number }): Promise<Record<string, unknown>> => {
    const b = broker();
    const shared = parseShared(body.topic);
    const inner = shared ? shared.filter : body.topic;
    if (shared === null || checkTopicFilter(inner)) throw new ApiError(400, 'INVALID_PARAMETER', `topic: ${body.topic} is not a valid topic filter`);
    if (shared && body.nl) throw new ApiError(400, 'INVALID_PARAMETER', 'nl: No Local is not allowed on a shared subscription');
    const options: SubscriptionOptions = { qos: (body.qos ?? 0) as QoS, noLocal: body.nl === 1, retainAsPublished: body.rap === 1, retainHandling: (body.rh ?? 0) as 0 | 1 | 2 };
    const { existed, refused } = b.subscribe(s, body.topic, options);
    if (refused) throw new ApiError(409, 'CONFLICT', `${body.topic} is held exclusively by another client`);
    b.changed(s);
    await b.confirmSubscriptions(s);
    if (!shared && (options.retainHandling === 0 || (options.retainHandling === 1 && !existed))) b.deliverRetained(s, body.topic, options);
    return sub(s.clientId, body.topic, options);
  };
  const unsubscribe = async (s: Session, topic: string): Promise<void> => {
    broker().unsubscribe(s, topic);
    await broker().confirmSubscriptions(s);
  };
  const topicBody = { type: 'object', required: ['topic'], properties: { topic: { type: 'string' } } };

  const installation: ApiRoute[] = [
    {
      method: 'GET',
      path: '/clients',
      summary: 'Clients (sessions), by client id (scaled out: of every gateway); filters username, clientid (repeatable), ip_address, conn_state, clean_start, proto_ver, like_clientid, like_username',
      schema: {
        query: { type: 'object', properties: clientsQuery },
        response: { type: 'object', properties: { data: { type: 'array', items: clientItem }, meta: { type: 'object' } } },
      },
      handler: async (req) => {
        const q = req.query as Record<string, unknown>;
        const p = paging(q);
        const { others, here } = listScope(req);
        if (!here && !cluster) return { body: page([], p) };
        if (others.length > 0 || !here) return { body: await cluster!.clientsPage(others, here ? { ids: (n) => matching(q, 0, n), objects } : undefined, q, p) };
        const start = (p.page - 1) * p.limit;
        const { count, data } = matching(q, start, start + p.limit);
        return { body: { data: objects(data), meta: { page: p.page, limit: p.limit, count, hasnext: start + p.limit < count } } };
      },
    },
    { method: 'GET', path: '/clients/:clientid', summary: 'One client', schema: { response: clientItem }, handler: forClient('', 'GET', (s) => ({ body: client(s) })) },
    {
      method: 'DELETE',
      path: '/clients/:clientid',
      summary: 'Kicks a client (v5: DISCONNECT 0x98) and ends its session',
      handler: forClient('', 'DELETE', (s) => {
        if (!broker().kick(s.clientId)) throw clientNotFound();
        return {};
      }),
    },
    {
      method: 'GET',
      path: '/clients/:clientid/subscriptions',
      summary: "A client's subscriptions",
      handler: forClient('/subscriptions', 'GET', (s) => ({ body: [...s.subscriptions].map(([t, o]) => sub(s.clientId, t, o)) })),
    },
    { method: 'POST', path: '/clients/:clientid/subscribe', summary: 'Subscribes a client as if it had sent SUBSCRIBE: {topic, qos, nl, rap, rh}', schema: { body: subBody }, handler: forClient('/subscribe', 'POST', async (s, req) => ({ body: await subscribe(s, req.body as { topic: string }) })) },
    {
      method: 'POST',
      path: '/clients/:clientid/subscribe/bulk',
      summary: 'Several subscriptions: [{topic, qos, nl, rap, rh}]',
      schema: { body: { type: 'array', items: subBody } },
      handler: forClient('/subscribe/bulk', 'POST', async (s, req) => {
        const out = [];
        for (const b of req.body as { topic: string }[]) out.push(await subscribe(s, b));
        return { body: out };
      }),
    },
    {
      method: 'POST',
      path: '/clients/:clientid/unsubscribe',
      summary: 'Unsubscribes a client: {topic}',
      schema: { body: topicBody },
      handler: forClient('/unsubscribe', 'POST', async (s, req) => (await unsubscribe(s, (req.body as { topic: string }).topic), {})),
    },
    {
      method: 'POST',
      path: '/clients/:clientid/unsubscribe/bulk',
      summary: 'Several unsubscriptions: [{topic}]',
      schema: { body: { type: 'array', items: topicBody } },
      handler: forClient('/unsubscribe/bulk', 'POST', async (s, req) => {
        for (const b of req.body as { topic: string }[]) await unsubscribe(s, b.topic);
        return {};
      }),
    },
    {
      method: 'GET',
      path: '/subscriptions',
      summary: 'Subscriptions (scaled out: of every gateway), by client id; filters clientid, topic, qos, share_group, match_topic',
      schema: { query: { type: 'object', properties: subsQuery } },
      handler: async (req) => {
        const q = req.query as Record<string, unknown>;
        const p = paging(q);
        if (typeof q.match_topic === 'string' && q.match_topic.startsWith('$share/')) throw new ApiError(400, 'INVALID_PARAMETER', 'match_topic_invalid');
        const { others, here } = listScope(req);
        if (others.length === 0 && here) return { body: page(subscriptions(q), p) };
        if (!cluster) return { body: page([], p) };
        return { body: await cluster.page(others, here ? (n) => part(subscriptions(q), n) : undefined, '/cluster/subscriptions', q, p, (x) => x.clientid as string) };
      },
    },
    {
      method: 'GET',
      path: '/topics',
      summary: 'Routes {topic, node} (scaled out: of every gateway), by topic; filter topic',
      schema: { query: { type: 'object', properties: { ...pagingQuery, topic: { type: 'string' } } } },
      handler: async (req) => {
        const q = req.query as Record<string, unknown>;
        const p = paging(q);
        const others = peers(req);
        if (others.length === 0) return { body: page(topics(q), p) };
        return { body: await cluster!.page(others, hasBroker() ? (n) => part(topics(q), n) : undefined, '/cluster/topics', q, p, (x) => `${x.topic as string}\u0000${x.node as string}`) };
      },
    },
    {
      method: 'GET',
      path: '/topics/:topic',
      summary: 'The routes of one topic filter (scaled out: on every gateway)',
      handler: async (req) => {
        const topic = req.params.topic!;
        const others = peers(req);
        const here = others.length === 0 || hasBroker() ? (routeFilters(broker()).has(topic) ? [{ topic, node: src.nodeName }] : []) : [];
        const all = others.length === 0 ? here : await cluster!.gather(others, here, `/topics/${encodeURIComponent(topic)}`);
        if (all.length === 0) throw new ApiError(404, 'TOPIC_NOT_FOUND', 'Topic not found');
        return { body: all };
      },
    },
  ];
  // What another gateway asks for its part of a list (api-cluster.ts); only processes of the installation may call them.
  const parts: ApiRoute[] = [
    { method: 'GET', path: '/cluster/clients', summary: "Between processes: this gateway's client ids matching the filters, the first `upto`: {count, data}", auth: 'peer', schema: { query: { type: 'object', properties: { ...clientsQuery, ...upto } } }, handler: (req) => ({ body: matching(req.query, 0, Number(req.query.upto ?? 0)) }) },
    { method: 'POST', path: '/cluster/clients', summary: 'Between processes: the client objects of these ids {ids}', auth: 'peer', schema: { body: { type: 'object', required: ['ids'], properties: { ids: { type: 'array', items: { type: 'string' } } } } }, handler: (req) => ({ body: objects((req.body as { ids: string[] }).ids) }) },
    { method: 'GET', path: '/cluster/subscriptions', summary: "Between processes: this gateway's matching subscriptions, the first `upto`: {count, data}", auth: 'peer', schema: { query: { type: 'object', properties: { ...subsQuery, ...upto } } }, handler: (req) => ({ body: part(subscriptions(req.query), Number(req.query.upto ?? 0)) }) },
    { method: 'GET', path: '/cluster/topics', summary: "Between processes: this gateway's routes, the first `upto`: {count, data}", auth: 'peer', schema: { query: { type: 'object', properties: { ...pagingQuery, topic: { type: 'string' }, ...upto } } }, handler: (req) => ({ body: part(topics(req.query), Number(req.query.upto ?? 0)) }) },
  ];
  const local: ApiRoute[] = [
    { method: 'POST', path: '/publish', summary: 'Publishes a message: {topic, payload, payload_encoding, qos, retain, properties} → {id}', schema: { body: pubBody }, handler: async (req) => publishOne(broker(), req.body as PublishBody) },
    {
      method: 'POST',
      path: '/publish/bulk',
      summary: 'Publishes several messages; one result each, in order',
      schema: { body: { type: 'array', items: pubBody } },
      handler: async (req) => {
        const bodies = req.body as PublishBody[];
        const b = broker();
        const messages = bodies.map((x) => toMessage(b, x));
        const results = await Promise.all(messages.map((m) => publishMessage(b, m)));
        const status = results.some((r) => r.status === 503) ? 503 : results.some((r) => r.status === 202) ? 202 : 200;
        return { status, body: results.map((r) => r.body) };
      },
    },
    {
      method: 'GET',
      path: '/retainer/messages',
      summary: 'Retained messages (without payloads), by topic',
      schema: { query: { type: 'object', properties: pagingQuery } },
      handler: (req) => ({ body: page(broker().retainedStore.all().map((m) => retainedItem(m, false)), paging(req.query)) }),
    },
    {
      method: 'GET',
      path: '/retainer/message/:topic',
      summary: "One topic's retained message, its payload base64",
      handler: (req) => {
        const m = broker().retainedStore.get(req.params.topic!);
        if (!m) throw new ApiError(404, 'NOT_FOUND', 'Viewed message doesn\'t exist');
        return { body: retainedItem(m, true) };
      },
    },
    {
      method: 'DELETE',
      path: '/retainer/message/:topic',
      summary: "Clears one topic's retained message",
      handler: async (req) => {
        const store = broker().retainedStore;
        if (!store.get(req.params.topic!)) throw new ApiError(404, 'NOT_FOUND', 'Viewed message doesn\'t exist');
        await store.set(newMessage(req.params.topic!, Buffer.alloc(0), 0, true, ''));
        return {};
      },
    },
    {
      method: 'GET',
      path: '/mqtt/delayed',
      summary: 'Delayed publish settings',
      handler: () => {
        const c = broker().settings.delayed;
        return { body: { enable: c.enable, max_delayed_messages: c.max_delayed_messages } };
      },
    },
    {
      method: 'GET',
      path: '/mqtt/delayed/messages',
      summary: 'Delayed messages waiting, soonest first',
      schema: { query: { type: 'object', properties: pagingQuery } },
      handler: (req) => {
        const items = broker().delayedMessages().map(({ key, due, msg }) => ({
          msgid: key,
          node: src.nodeName,
          topic: msg.topic,
          qos: msg.qos,
          from_clientid: msg.from || null,
          from_username: null,
          publish_at: rfc3339(msg.timestamp),
          delayed_interval: Math.round((due - msg.timestamp) / 1000),
          delayed_remaining: Math.max(0, Math.round((due - Date.now()) / 1000)),
          expected_at: rfc3339(due),
        }));
        return { body: page(items, paging(req.query)) };
      },
    },
    {
      method: 'GET',
      path: '/listeners',
      summary: 'MQTT listeners: id, type, name, enable, bind, max_connections, status',
      handler: () => ({ body: listeners(src.gateway()) }),
    },
    {
      method: 'GET',
      path: '/alarms',
      summary: 'Alarms (none are raised yet: always an empty page)',
      schema: { query: { type: 'object', properties: { ...pagingQuery, activated: { type: 'boolean' } } } },
      handler: (req) => ({ body: page([], paging(req.query)) }),
    },
  ];
  return [...installation, ...(cluster ? parts : []), ...local.map((r) => (cluster ? cluster.anywhere(r, hasBroker) : r))];
}

/** EMQX's client object, as far as Tributary knows the fields (null for what it does not). */
export function clientObject(s: Session, node: string): Record<string, unknown> {
  const ch = s.owner instanceof Channel ? s.owner : undefined;
  const info = s.client as (Session['client'] & { cleanStart?: boolean; keepalive?: number }) | undefined;
  const addr = ch?.io.remoteAddress ?? '';
  const colon = addr.lastIndexOf(':');
  return {
    clientid: s.clientId,
    username: ch?.username ?? info?.username ?? null,
    node,
    ip_address: ch ? ch.peerhost : info?.peerhost ?? null,
    port: ch && colon >= 0 ? Number(addr.slice(colon + 1)) : null,
    proto_name: 'MQTT',
    proto_ver: s.protocolVersion,
    is_bridge: false,
    clean_start: info?.cleanStart ?? null,
    connected: ch !== undefined,
    keepalive: ch?.keepalive ?? info?.keepalive ?? null,
    expiry_interval: s.expiryInterval,
    is_persistent: s.persistent,
    listener: ch?.io.listener ?? info?.listener ?? null,
    mountpoint: null,
    client_attrs: s.client?.clientAttrs ?? {},
    created_at: rfc3339(s.createdAt),
    connected_at: rfc3339(ch?.connectedAt),
    ...(s.disconnectedAt ? { disconnected_at: rfc3339(s.disconnectedAt) } : {}),
    subscriptions_cnt: s.subscriptions.size,
    subscriptions_max: 'infinity',
    inflight_cnt: s.inflightCount,
    inflight_max: s.inflightMax,
    mqueue_len: s.queueLength,
    mqueue_max: s.limits.maxQueue,
    mqueue_dropped: s.droppedQueueFull,
    awaiting_rel_cnt: s.awaitingRelCount,
    awaiting_rel_max: s.limits.maxAwaitingRel,
    ...trafficCounters(ch, s),
  };
}

/**
 * EMQX's per-client traffic counters (flat keys with dots): the connection's, 0 while the client
 * is disconnected; the dropped deliveries are the session's.
 */
function trafficCounters(ch: Channel | undefined, s: Session): Record<string, number> {
  const dropped = s.droppedQueueFull + s.droppedExpired + s.droppedTooLarge;
  return {
    recv_cnt: ch?.recvCnt ?? 0,
    recv_msg: ch?.recvMsg ?? 0,
    'recv_msg.qos0': ch?.recvQos0 ?? 0,
    'recv_msg.qos1': ch?.recvQos1 ?? 0,
    'recv_msg.qos2': ch?.recvQos2 ?? 0,
    recv_oct: ch?.recvOct ?? 0,
    recv_pkt: ch?.recvPkt ?? 0,
    send_cnt: ch?.io.writes ?? 0,
    send_msg: ch?.sendMsg ?? 0,
    'send_msg.qos0': ch?.sendQos0 ?? 0,
    'send_msg.qos1': ch?.sendQos1 ?? 0,
    'send_msg.qos2': ch?.sendQos2 ?? 0,
    'send_msg.dropped': dropped,
    'send_msg.dropped.expired': s.droppedExpired,
    'send_msg.dropped.queue_full': s.droppedQueueFull,
    'send_msg.dropped.too_large': s.droppedTooLarge,
    send_oct: ch?.sendOct ?? 0,
    send_pkt: ch?.sendPkt ?? 0,
  };
}

/** The filters of GET /clients as one test, or undefined when none is given. */
function clientFilter(q: Record<string, unknown>): ((s: Session) => boolean) | undefined {
  const tests: ((s: Session) => boolean)[] = [];
  const user = (s: Session): string | undefined => s.client?.username;
  const usernames = listParam(q, 'username');
  const ids = listParam(q, 'clientid');
  if (usernames.length) tests.push((s) => usernames.includes(user(s) ?? ''));
  if (ids.length) tests.push((s) => ids.includes(s.clientId));
  if (typeof q.ip_address === 'string') tests.push((s) => s.client?.peerhost === q.ip_address);
  if (q.conn_state === 'connected') tests.push((s) => s.owner !== undefined);
  else if (q.conn_state === 'disconnected' || q.conn_state === 'idle') tests.push((s) => s.owner === undefined);
  if (typeof q.clean_start === 'boolean') tests.push((s) => (s.client as { cleanStart?: boolean } | undefined)?.cleanStart === q.clean_start);
  if (typeof q.proto_ver === 'number') tests.push((s) => s.protocolVersion === q.proto_ver);
  if (typeof q.like_clientid === 'string') tests.push((s) => s.clientId.includes(q.like_clientid as string));
  if (typeof q.like_username === 'string') tests.push((s) => (user(s) ?? '').includes(q.like_username as string));
  if (tests.length === 0) return undefined;
  return (s) => tests.every((t) => t(s));
}

function routeFilters(b: Broker): Set<string> {
  const out = new Set<string>();
  for (const s of b.allSessions()) for (const t of s.subscriptions.keys()) out.add(t);
  return out;
}

interface PublishBody {
  topic: string;
  payload: string;
  payload_encoding?: 'plain' | 'base64';
  encoding?: 'plain' | 'base64';
  qos?: number;
  retain?: boolean;
  properties?: { payload_format_indicator?: 0 | 1; message_expiry_interval?: number; response_topic?: string; correlation_data?: string; user_properties?: Record<string, string>; content_type?: string };
}

class PublishRefused extends ApiError {
  constructor(readonly reasonCode: number, message: string) {
    super(400, 'BAD_REQUEST', message);
  }
}

function toMessage(b: Broker, x: PublishBody): Message {
  if (checkTopicName(x.topic, b.settings.mqtt.max_topic_levels)) throw new PublishRefused(144, 'topic_name_invalid');
  const base64 = (x.payload_encoding ?? x.encoding) === 'base64';
  if (base64 && !/^[A-Za-z0-9+/]*={0,2}$/.test(x.payload)) throw new PublishRefused(131, 'bad base64 payload');
  const payload = Buffer.from(x.payload, base64 ? 'base64' : 'utf8');
  if (payload.length > b.settings.mqtt.max_packet_size) throw new PublishRefused(151, 'packet_too_large');
  const p = x.properties;
  let props: MessageProperties | undefined;
  if (p) {
    props = {};
    if (p.payload_format_indicator !== undefined) props.payloadFormatIndicator = p.payload_format_indicator;
    if (p.message_expiry_interval !== undefined) props.messageExpiryInterval = p.message_expiry_interval;
    if (p.response_topic !== undefined) props.responseTopic = p.response_topic;
    if (p.correlation_data !== undefined) props.correlationData = Buffer.from(p.correlation_data);
    if (p.user_properties !== undefined) props.userProperties = p.user_properties;
    if (p.content_type !== undefined) props.contentType = p.content_type;
  }
  return newMessage(x.topic, payload, (x.qos ?? 0) as QoS, x.retain ?? false, '', props);
}

async function publishOne(b: Broker, x: PublishBody): Promise<{ status: number; body: unknown }> {
  let msg: Message;
  try {
    msg = toMessage(b, x);
  } catch (err) {
    if (err instanceof PublishRefused) return { status: 400, body: { reason_code: err.reasonCode, message: err.message } };
    throw err;
  }
  return publishMessage(b, msg);
}

/** 200 {id} when a subscriber of this node matches (always for $delayed/), else 202 no_matching_subscribers; 503 when the append failed. */
async function publishMessage(b: Broker, msg: Message): Promise<{ status: number; body: unknown }> {
  const id = randomBytes(16).toString('hex');
  const matched = msg.topic.startsWith('$delayed/') || b.router.routes(msg.topic).length > 0 || b.router.sharedGroups(msg.topic).length > 0;
  try {
    await b.publish(msg);
  } catch {
    return { status: 503, body: { reason_code: 131, message: 'failed_to_dispatch' } };
  }
  return matched ? { status: 200, body: { id } } : { status: 202, body: { reason_code: 16, message: 'no_matching_subscribers' } };
}

function retainedItem(m: Message, withPayload: boolean): Record<string, unknown> {
  return {
    msgid: m.offset >= 0 ? String(m.offset) : null,
    topic: m.topic,
    qos: m.qos,
    from_clientid: m.from || null,
    from_username: null,
    publish_at: rfc3339(m.timestamp),
    ...(withPayload ? { payload: m.payload.toString('base64') } : {}),
  };
}

function listeners(g: Gateway | undefined): Record<string, unknown>[] {
  if (!g) return [];
  const c = g.listenerConfig;
  return (['tcp', 'ssl', 'ws', 'wss'] as const).map((type) => {
    const id = `${type}:default`;
    const conf = c[type].default;
    const running = g.listeners.find((l) => l.name === id);
    const bind = running ? `${running.host.includes(':') ? `[${running.host}]` : running.host}:${running.port}` : `${conf.bind.host}:${conf.bind.port}`;
    return { id, type, name: 'default', enable: conf.enable, bind, max_connections: conf.max_connections, status: { running: running !== undefined, max_connections: conf.max_connections, current_connections: g.listenerConnections(id) } };
  });
}
