import type { Backbone } from '@tributary/backbone';
import type { Logger } from '@tributary/common';
import type { HookRegistry } from '@tributary/hooks';
import { BanService } from './ban-service';
import { BanStore } from './banned';
import type { LimitsConfig } from './limits-config';
import { OverloadProtection } from './overload';

export interface LimitsServiceOptions {
  config: LimitsConfig;
  backbone: Backbone;
  hooks: HookRegistry;
  logger: Logger;
  /** Disconnects a connected client of this process (v5: DISCONNECT with the reason code). */
  kick: (clientId: string, reasonCode: number) => void;
}

/**
 * What refuses a CONNECT before authentication, at the `banned` priority: the bans of the
 * `banned` table with flapping detection (BanService) and, when enabled, overload protection.
 * `bans` is the store the CLI and the HTTP API add to, list and delete from.
 */
export class LimitsService {
  private banService: BanService | undefined;
  private overload: OverloadProtection | undefined;

  constructor(private readonly opts: LimitsServiceOptions) {}

  /** The ban list (available once started). */
  get bans(): BanStore {
    if (!this.banService) throw new Error('the limits service is not started');
    return this.banService.store;
  }

  /** client.banned, client.banned.disconnected, client.flapping and overload.refused. */
  get metrics(): Record<string, number> {
    return { ...this.banService?.metrics, ...this.overload?.metrics };
  }

  async start(): Promise<void> {
    const { config, hooks, logger, kick } = this.opts;
    const store = await BanStore.open(this.opts.backbone, logger);
    this.banService = new BanService({ store, hooks, logger, flapping: config.flapping_detect, kick });
    await this.banService.start();
    if (config.overload_protection.enable) {
      this.overload = new OverloadProtection({ hooks, logger, config: config.overload_protection });
      await this.overload.start();
    }
    logger.info({ bans: store.size, flapping_detect: config.flapping_detect.enable, overload_protection: config.overload_protection.enable }, 'bans and limits ready');
  }

  async stop(): Promise<void> {
    await this.overload?.stop();
    await this.banService?.stop();
  }
}
