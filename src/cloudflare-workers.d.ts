// The part of `cloudflare:workers` this package builds against. It is not published: a Worker
// project declares the module itself (`wrangler types`, or @cloudflare/workers-types).
declare module 'cloudflare:workers' {
  export abstract class DurableObject<Env = unknown> {
    protected ctx: {
      storage: {
        get<T>(key: string): Promise<T | undefined>
        put<T>(key: string, value: T): Promise<void>
        delete(key: string): Promise<boolean>
        getAlarm(): Promise<number | null>
        setAlarm(scheduledTime: number | Date): Promise<void>
      }
    }
    protected env: Env
    constructor(ctx: unknown, env: Env)
  }
}
