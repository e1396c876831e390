import { generate } from 'selfsigned';

/** A PEM certificate and its private key. */
export interface Pem {
  cert: string;
  key: string;
}

/** A subject attribute: commonName, organizationName, countryName, ... */
export type SubjectAttr = { name: string; value: string };

/** A test certificate authority (EC P-256), its subject CN `cn`. */
export async function makeCa(cn: string): Promise<Pem> {
  const ca = await generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: ca.cert, key: ca.private };
}

/**
 * A certificate signed by `ca`: a server certificate for 127.0.0.1 and localhost, or a client
 * certificate. `subject` is a CN, or the attributes in certificate order (country first).
 */
export async function issue(ca: Pem, subject: string | SubjectAttr[], usage: 'server' | 'client'): Promise<Pem> {
  const attrs = typeof subject === 'string' ? [{ name: 'commonName', value: subject }] : subject;
  const pems = await generate(attrs, {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      usage === 'server' ? { name: 'extKeyUsage', serverAuth: true } : { name: 'extKeyUsage', clientAuth: true },
      ...(usage === 'server' ? [{ name: 'subjectAltName' as const, altNames: [{ type: 2 as const, value: 'localhost' }, { type: 7 as const, ip: '127.0.0.1' }] }] : []),
    ],
  });
  return { cert: pems.cert, key: pems.private };
}
