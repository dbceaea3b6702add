// The lines a watch stream has read off the socket and the watcher has not handled yet, so the socket is read as fast as the server writes while events are handled at their own pace, up to a bound.
//
// kube-apiserver closes a watch whose client does not take its events fast enough ("Forcing …
// watcher close due to unresponsiveness": its 100-event buffers stay full past a short timeout).
// Reading the socket in the same turn as handling each event ties the read rate to the handling
// rate, so a busy watcher looks unresponsive; buffering the lines decouples the two.
//
// Guarantees: lines come out in the order they went in, and none is dropped. Past `maxChars`
// characters (bytes, for the ASCII of JSON), `push` returns a promise that resolves once handling has
// brought the buffer below half of the bound: the stream awaits it and reads nothing meanwhile, so
// memory stays bounded and the server decides — it may wait, or close the watch, which the state
// machine answers by watching or listing again from the last resourceVersion it handled.
export class LineBuffer {
  private lines: string[] = [];
  private head = 0;
  private chars = 0;
  private ended = false;
  private readonly maxChars: number;
  /** Handling waits here for a line or the end. */
  private dataWaiter: (() => void) | undefined;
  /** Reading waits here for room. */
  private roomWaiter: PromiseWithResolvers<void> | undefined;

  constructor(maxChars: number) {
    this.maxChars = maxChars;
  }

  /** Characters buffered now. */
  get size(): number {
    return this.chars;
  }

  /** Adds a line; returns a promise to await before reading more when the buffer is full. */
  push(line: string): Promise<void> | undefined {
    if (this.ended) return undefined;
    this.lines.push(line);
    this.chars += line.length;
    this.wakeHandler();
    if (this.chars <= this.maxChars) return undefined;
    this.roomWaiter ??= Promise.withResolvers<void>();
    return this.roomWaiter.promise;
  }

  /** No more lines will come (the stream ended or failed); those buffered are still taken. */
  end(): void {
    this.ended = true;
    this.wakeHandler();
  }

  /** Forgets every buffered line (the watch is abandoned) and frees a waiting reader. */
  discard(): void {
    this.ended = true;
    this.lines = [];
    this.head = 0;
    this.chars = 0;
    this.wakeHandler();
    this.wakeReader();
  }

  /** The next line at once, if one is buffered. */
  take(): string | undefined {
    if (this.head >= this.lines.length) return undefined;
    const line = this.lines[this.head] as string;
    this.lines[this.head] = '';
    this.head++;
    this.chars -= line.length;
    // Compacts now and then, so taken lines do not pin the array's length.
    if (this.head >= 1_024 && this.head * 2 >= this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
    if (this.roomWaiter !== undefined && this.chars <= this.maxChars / 2) this.wakeReader();
    return line;
  }

  /** The next line, waiting for one; undefined once the stream ended and everything was taken. */
  async next(): Promise<string | undefined> {
    for (;;) {
      const line = this.take();
      if (line !== undefined || this.ended) return line;
      await new Promise<void>((resolve) => {
        this.dataWaiter = resolve;
      });
    }
  }

  private wakeHandler(): void {
    const waiter = this.dataWaiter;
    this.dataWaiter = undefined;
    waiter?.();
  }

  private wakeReader(): void {
    const waiter = this.roomWaiter;
    this.roomWaiter = undefined;
    waiter?.resolve();
  }
}
