/**
 * The scheduler's loop, paused while CVAT refuses the credentials: every chunk would
 * answer 401. Discovery keeps polling, and its first accepted request resumes warming.
 */
import type { CvatClient } from '../cvat/client.js';
import type { Logger } from '../log.js';
import type { WarmScheduler } from './scheduler.js';

export interface WarmLoopOptions {
  client: Pick<CvatClient, 'credentialsState' | 'onCredentialsChange'>;
  scheduler: WarmScheduler;
  logger: Logger;
  /** No new passes once aborted; the running one drains. */
  stop: AbortSignal;
  /** Cuts the running pass's in-flight requests. */
  hard: AbortSignal;
  onError: (error: unknown) => void;
}

export async function warmWhileCredentialsWork(options: WarmLoopOptions): Promise<void> {
  const { client, scheduler, logger, stop, hard } = options;
  while (!stop.aborted) {
    if (client.credentialsState.accepted === false) {
      logger.warn('warming paused: CVAT refuses the credentials; it resumes once they are accepted again');
      await untilCredentialsChange(client, stop);
      const now = client.credentialsState; // read afresh: the await above may have changed it
      if (now.accepted === true) {
        logger.info('credentials accepted again: warming resumes');
        // One pass at once (it plans only what is due, so it is cheap when nothing is).
        void scheduler.nextPass();
      }
      continue;
    }
    const refused = new AbortController();
    const unsubscribe = client.onCredentialsChange((state) => state.accepted === false && refused.abort());
    try {
      await scheduler.loop({ stop: AbortSignal.any([stop, refused.signal]), hard }, options.onError);
    } finally {
      unsubscribe();
    }
  }
}

function untilCredentialsChange(client: WarmLoopOptions['client'], stop: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      unsubscribe();
      stop.removeEventListener('abort', done);
      resolve();
    };
    const unsubscribe = client.onCredentialsChange(done);
    stop.addEventListener('abort', done, { once: true });
  });
}
