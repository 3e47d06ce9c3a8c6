// `npm run local-server`: the local authorization server and API on a fixed port, for trying
// the examples by hand. It runs until Ctrl-C; each start begins a new grant at
// `demo-refresh-token`. Options: --port <n> (default 9000), --public (a public client: no secret).
import { parseArgs } from 'node:util'
import { startLocalServer } from './server.mjs'

const { values } = parseArgs({ options: { port: { type: 'string', default: '9000' }, public: { type: 'boolean', default: false } } })
const server = await startLocalServer({ port: Number(values.port), ...(values.public && { clientSecret: null }) })
console.log(`token endpoint ${server.tokenUrl}`)
console.log(`API            ${server.apiUrl}`)
console.log(`client         demo-client${values.public ? ' (public: no secret)' : ', secret demo-secret'}; refresh token demo-refresh-token`)
