/**
 * The stream polls waiting in one execution. A poll waits without a timer
 * (no history events while it waits); instead a newer poll of the same feed
 * releases the older one (an API process retrying a poll it lost track of),
 * and beyond MAX_WAITING_POLLS the oldest is released, so a run stays within
 * Temporal's limit of Updates in flight however many API processes watch it.
 */
import { MAX_WAITING_POLLS } from '../contract/run-contract';

export interface WaitingPoll {
  readonly feed: string | undefined;
  released: boolean;
}

export class WaitingPolls {
  private waiting: WaitingPoll[] = [];

  open(feed: string | undefined): WaitingPoll {
    for (const poll of this.waiting) {
      if (feed !== undefined && poll.feed === feed) poll.released = true;
    }
    this.waiting = this.waiting.filter((p) => !p.released);
    while (this.waiting.length >= MAX_WAITING_POLLS) {
      const oldest = this.waiting.shift();
      if (oldest) oldest.released = true;
    }
    const poll = { feed, released: false };
    this.waiting.push(poll);
    return poll;
  }

  close(poll: WaitingPoll): void {
    this.waiting = this.waiting.filter((p) => p !== poll);
  }
}
