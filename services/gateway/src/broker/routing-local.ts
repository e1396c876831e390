import type { Message } from '@tributary/mqtt';
import { deliveryFor } from './deliveries';
import type { BrokerCore, RoutingStrategy } from './strategies';

/**
 * The single node's routing: every session lives in this process, so a published message is
 * matched against the broker's own subscription table (the Router) and delivered at once.
 */
export class LocalRouting implements RoutingStrategy {
  private core!: BrokerCore;

  start(core: BrokerCore): Promise<void> {
    this.core = core;
    return Promise.resolve();
  }

  route(msg: Message): void {
    const core = this.core;
    const routes = core.router.routes(msg.topic);
    const groups = core.router.sharedGroups(msg.topic);
    for (let i = 0; i < groups.length; i++) core.dispatchShared(groups[i]!, msg);
    if (routes.length === 0) {
      if (groups.length === 0) core.messageDropped(msg, 'no_subscribers');
      return;
    }
    for (let i = 0; i < routes.length; i++) {
      const route = routes[i]!;
      const d = deliveryFor(route, msg);
      if (!d) {
        core.noLocal(route.clientId, msg);
        continue;
      }
      const s = core.session(route.clientId);
      if (s) s.deliver(d);
    }
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
