// The few parts of oidc-provider (which ships no types) that the interop test uses.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  interface Saved {
    save(): Promise<string>
  }

  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>)
    callback(): (request: IncomingMessage, response: ServerResponse) => void
    on(event: string, listener: (...args: unknown[]) => void): this
    Client: { find(id: string): Promise<object | undefined> }
    Grant: new (values: { accountId: string; clientId: string }) => Saved & { addOIDCScope(scope: string): void }
    RefreshToken: new (values: Record<string, unknown>) => Saved
  }
}
