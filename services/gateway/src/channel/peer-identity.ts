import type { GatewayConfig } from '../config';
import type { ChannelIO } from './channel';

/** What the TLS layer says the client is: replaces or fills in the CONNECT's username and client id. */
export interface PeerIdentity {
  /** Replaces the CONNECT's username (peer_cert_as_username). */
  username?: string;
  /** Replaces the CONNECT's client id (peer_cert_as_clientid). */
  clientId?: string;
  /** The username of a client that sent none (its TLS-PSK identity). */
  defaultUsername?: string;
}

type CertField = 'disable' | 'cn' | 'dn';

/** The peer_cert_as_* keys of the listener `name` ("ssl:default"); disable on listeners without them. */
function peerCertAs(config: GatewayConfig, name: string): { username: CertField; clientid: CertField } {
  const [proto, id] = name.split(':');
  const listeners = config.listeners as unknown as Record<string, Record<string, { peer_cert_as_username?: CertField; peer_cert_as_clientid?: CertField } | undefined> | undefined>;
  const l = proto && id ? listeners[proto]?.[id] : undefined;
  return { username: l?.peer_cert_as_username ?? 'disable', clientid: l?.peer_cert_as_clientid ?? 'disable' };
}

/**
 * EMQX's peer_cert_as_username / peer_cert_as_clientid: with a verified client certificate the
 * subject's CN or DN replaces what the client sent (a certificate is the stronger claim). A
 * TLS-PSK client that sends no username gets its PSK identity as username, so ACL rules and
 * hooks can name it.
 */
export function peerIdentity(io: ChannelIO, config: GatewayConfig): PeerIdentity {
  const out: PeerIdentity = {};
  const as = peerCertAs(config, io.listener);
  if (as.username !== 'disable' || as.clientid !== 'disable') {
    const cert = io.peerCertificate();
    if (cert) {
      if (as.username !== 'disable' && cert[as.username] !== undefined) out.username = cert[as.username];
      if (as.clientid !== 'disable' && cert[as.clientid] !== undefined) out.clientId = cert[as.clientid];
    }
  }
  const psk = io.pskIdentity();
  if (psk !== undefined) out.defaultUsername = psk;
  return out;
}
