/**
 * A run's ACTION and AGENT nodes waiting for the process's node slots (see NodeSlots), and
 * the pipeline's maxConcurrency: how many of the slots the run may hold at once.
 */
import type { NodeDefinition } from "../domain/definition.ts";
import type { NodeSlots, SlotTaken, SlotUser } from "./node-slots.ts";

export class RunSlots implements SlotUser {
  readonly #slots: NodeSlots;
  readonly #limit: number;
  /** Starts a node with a slot the run now holds. */
  readonly #start: (node: NodeDefinition) => void;
  /** False once the run ends or pauses: waiting nodes then stay unstarted. */
  readonly #open: () => boolean;
  /** In the order they became ready. */
  #waiting: NodeDefinition[] = [];
  #head = 0;
  #held = 0;

  constructor(
    slots: NodeSlots,
    limit: number | null,
    start: (node: NodeDefinition) => void,
    open: () => boolean,
  ) {
    this.#slots = slots;
    this.#limit = limit ?? Number.POSITIVE_INFINITY;
    this.#start = start;
    this.#open = open;
  }

  /** Nodes waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  push(node: NodeDefinition): void {
    this.#waiting.push(node);
  }

  /** Asks for slots if nodes wait and the run may hold more. */
  request(): void {
    if (this.waiting > 0 && this.#held < this.#limit && this.#open()) this.#slots.request(this);
  }

  takeSlot(): SlotTaken {
    if (this.waiting === 0 || this.#held >= this.#limit || !this.#open()) return "none";
    const node = this.#waiting[this.#head++]!;
    if (this.#head === this.#waiting.length) this.clear();
    this.#held++;
    this.#start(node);
    return this.waiting > 0 && this.#held < this.#limit ? "more" : "last";
  }

  /** A node started with a slot is done: the slot goes back, and more are asked for. */
  release(): void {
    this.#held--;
    this.#slots.release();
    this.request();
  }

  /** Forgets the waiting nodes (the run ended). */
  clear(): void {
    this.#waiting = [];
    this.#head = 0;
  }
}
