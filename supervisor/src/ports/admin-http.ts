import type { Disposable } from './disposable.js';
import type { WriteStream } from './image-store.js';

// The admin page's HTTP exchange: the server adapter reads requests into
// these and writes these back, the api layer's routes answer without sockets.

/** An HTTP request as the admin page's routes see it: already read, no sockets. */
export interface AdminRequest {
  readonly method: string;
  /** The path without the query, as sent (not decoded). */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The body as text (the server bounds its size). */
  readonly body: string;
  /** The client's address. */
  readonly remote: string;
  /** Whether it came over HTTPS (cookies are then Secure). */
  readonly secure: boolean;
  /** A POST of application/octet-stream: its body, left unread for the route to stream into a file (`body` is then empty). */
  readonly upload?: AdminUpload;
}

/** A request body still on the wire (an image upload); if the route never writes it, the connection is closed after the answer. */
export interface AdminUpload {
  /** Content-Length; undefined when the client sent none. */
  readonly length: number | undefined;
  /** Throws (a TabulaError naming how much came) when the connection ends before the whole body. */
  readonly writeTo: WriteStream;
}

/** Where a Server-Sent Events stream writes; `close` ends the response. */
export interface EventSink {
  send(text: string): void;
  close(): void;
}

export type AdminResponse =
  | { readonly kind: 'body'; readonly status: number; readonly type: string; readonly body: string; readonly headers?: Readonly<Record<string, string>> }
  /** A Server-Sent Events stream: `open` starts it; what it returns is disposed of when the client goes. */
  | { readonly kind: 'events'; readonly open: (sink: EventSink) => Disposable };
