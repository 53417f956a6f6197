/** A wait that `interrupt()` ends early, so a stopping loop never sits out its back-off. */
export class InterruptibleSleep {
  #wake: (() => void) | undefined;

  async sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
  }

  interrupt(): void {
    this.#wake?.();
  }
}
