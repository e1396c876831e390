import type { AuthorizeRequest, ClientInfo } from '@tributary/hooks';
import { HttpProvider, HttpReply, HttpRequestConfig, jsonObjectOf, parseHttpRequest } from '../http-request';
import { attrValues, CLIENT_ATTRS_PLACEHOLDER } from '../template';
import type { AuthzOutcome, AuthzSource, ProviderSpec } from '../types';

/** The placeholders an HTTP source's url and body may use. */
export const AUTHZ_HTTP_PLACEHOLDERS = ['username', 'clientid', 'peerhost', 'topic', 'action', 'qos', 'retain', CLIENT_ATTRS_PLACEHOLDER] as const;

/**
 * The `http` authorization source (EMQX's): asks a server about each publish and subscribe
 * (decisions are cached per client like every source's). 200 with `{"result": "allow"|"deny"}`
 * decides, 204 allows; `"ignore"`, any other status or body, a network error or no reply within
 * request_timeout: nomatch (the next source decides).
 */
export class HttpSource extends HttpProvider implements AuthzSource {
  readonly type = 'http';

  async authorize(client: ClientInfo, req: AuthorizeRequest): Promise<AuthzOutcome> {
    const values = {
      ...attrValues(client.clientAttrs),
      username: client.username ?? '',
      clientid: client.clientId,
      peerhost: client.peerhost,
      topic: req.topic,
      action: req.action,
      qos: String(req.qos),
      retain: String(req.retain),
    };
    let reply: HttpReply;
    try {
      reply = await this.client.send(values);
    } catch (err) {
      this.logger.warn({ source: this.type, server: this.client.where, err: (err as Error).message }, 'HTTP authorization server unreachable; trying the next source');
      return 'nomatch';
    }
    if (reply.status === 204) return 'allow';
    const json = reply.status === 200 ? jsonObjectOf(reply.body) : undefined;
    if (json?.result === 'allow' || json?.result === 'deny') return json.result;
    if (json?.result !== 'ignore') this.logger.warn({ source: this.type, server: this.client.where, status: reply.status }, 'HTTP authorization reply not usable; trying the next source');
    return 'nomatch';
  }
}

/** The `http` source provider. */
export const httpSource: ProviderSpec<HttpRequestConfig, AuthzSource> = {
  parse: (raw) => parseHttpRequest(raw, AUTHZ_HTTP_PLACEHOLDERS),
  create: (config, ctx) => new HttpSource(config, ctx.logger),
};
