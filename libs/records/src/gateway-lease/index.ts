import { inRange, RecordCodec, RecordError, versionedCodec } from '../codec';
import type { GatewayLease } from './record';
import { decodeGatewayLeaseV1 } from './v1';
import { decodeGatewayLeaseV2, encodeGatewayLeaseV2, GATEWAY_LEASE_V2 } from './v2';

export * from './record';

function checkLease(l: GatewayLease): void {
  if (l.incarnation.length === 0) throw new RecordError('gateway lease: empty incarnation');
  inRange('gateway lease: startedAt', l.startedAt, 0, Number.MAX_SAFE_INTEGER);
  inRange('gateway lease: until', l.until, 0, Number.MAX_SAFE_INTEGER);
}

/** The gateways table's records: writes io.tributary.v2.GatewayLease; reads v2 and the JSON v1. */
export const gatewayLeaseCodec: RecordCodec<GatewayLease> = versionedCodec<GatewayLease>({
  schema: GATEWAY_LEASE_V2,
  version: 2,
  encode: encodeGatewayLeaseV2,
  decoders: { 2: decodeGatewayLeaseV2 },
  legacyJson: decodeGatewayLeaseV1,
  check: checkLease,
});
