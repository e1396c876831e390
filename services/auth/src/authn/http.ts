import { clientAttrsFrom, type Credentials } from '@tributary/hooks';
import { AclRule, rulesFromClaim } from '../acl';
import { HttpProvider, HttpReply, HttpRequestConfig, jsonObjectOf, parseHttpRequest } from '../http-request';
import { attrValues, CLIENT_ATTRS_PLACEHOLDER } from '../template';
import type { Authenticator, AuthnOutcome, ProviderSpec } from '../types';

/** The placeholders an HTTP authenticator's url and body may use. */
export const AUTHN_HTTP_PLACEHOLDERS = ['username', 'clientid', 'password', 'peerhost', CLIENT_ATTRS_PLACEHOLDER] as const;

const IGNORE: AuthnOutcome = { result: 'ignore' };

/**
 * `password_based:http` (EMQX's HTTP authenticator): asks a server about each client. 200 with
 * `{"result": "allow"|"deny"|"ignore", "is_superuser", "acl", "expire_at", "client_attrs"}`
 * decides, 204 allows; `client_attrs` (an object of names to strings) become the client's
 * attributes, over mqtt.client_attrs_init's. Any other status, a body that is not JSON, an
 * unknown result, a bad `acl`, `expire_at` or `client_attrs` (not an object), a
 * network error or no reply within request_timeout: ignore (the next authenticator decides).
 */
export class HttpAuthenticator extends HttpProvider implements Authenticator {
  readonly id = 'password_based:http';
  /** Replies may carry the client's own rules (`acl`). */
  readonly grantsAcl = true;

  async authenticate(cred: Credentials): Promise<AuthnOutcome> {
    const values = { ...attrValues(cred.clientAttrs), username: cred.username ?? '', clientid: cred.clientId, password: cred.password?.toString('utf8') ?? '', peerhost: cred.peerhost };
    let reply: HttpReply;
    try {
      reply = await this.client.send(values);
    } catch (err) {
      this.logger.warn({ authenticator: this.id, server: this.client.where, err: (err as Error).message }, 'HTTP authentication server unreachable; trying the next authenticator');
      return IGNORE;
    }
    return this.outcome(reply, cred);
  }

  private outcome(reply: HttpReply, cred: Credentials): AuthnOutcome {
    if (reply.status === 204) return { result: 'allow' };
    const why = (reason: string): AuthnOutcome => {
      this.logger.warn({ authenticator: this.id, server: this.client.where, status: reply.status, clientId: cred.clientId, reason }, 'HTTP authentication reply not usable; trying the next authenticator');
      return IGNORE;
    };
    if (reply.status !== 200) return why('status is neither 200 nor 204');
    const json = jsonObjectOf(reply.body);
    if (!json) return why('body is not a JSON object');
    if (json.result === 'ignore') return IGNORE;
    if (json.result === 'deny') return { result: 'deny' };
    if (json.result !== 'allow') return why('result is not allow, deny or ignore');
    let acl: AclRule[] | undefined;
    if (json.acl !== undefined) {
      try {
        acl = rulesFromClaim(json.acl);
      } catch (err) {
        return why((err as Error).message);
      }
    }
    let expireAt: number | undefined;
    if (json.expire_at !== undefined) {
      if (typeof json.expire_at !== 'number' || !Number.isFinite(json.expire_at) || json.expire_at <= 0) return why('expire_at is not seconds since the epoch');
      expireAt = json.expire_at * 1000;
    }
    let clientAttrs: Record<string, string> | undefined;
    if (json.client_attrs !== undefined) {
      if (json.client_attrs === null || typeof json.client_attrs !== 'object' || Array.isArray(json.client_attrs)) return why('client_attrs is not an object');
      clientAttrs = clientAttrsFrom(json.client_attrs);
    }
    return { result: 'allow', isSuperuser: json.is_superuser === true || json.is_superuser === 'true', acl, expireAt, clientAttrs };
  }
}

/** The `password_based:http` provider. */
export const httpAuthenticator: ProviderSpec<HttpRequestConfig, Authenticator> = {
  parse: (raw) => parseHttpRequest(raw, AUTHN_HTTP_PLACEHOLDERS),
  create: (config, ctx) => new HttpAuthenticator(config, ctx.logger),
};
