import { checkAvro, RecordError } from '../../codec';
import type { GatewayLease } from '../record';
import { gatewayLeaseV2Type } from '../v2';

/** Version 1: the JSON lease gateways wrote before framing (test/fixtures/gateway-lease.v1.json); held to the v2 types. */
export function decodeGatewayLeaseV1(json: unknown): GatewayLease {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new RecordError('gateway lease v1: not a JSON object');
  const j = json as Record<string, unknown>;
  const lease = { incarnation: j.incarnation, startedAt: j.startedAt, until: j.until };
  checkAvro(gatewayLeaseV2Type, lease);
  return lease as GatewayLease;
}
