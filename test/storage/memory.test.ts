import { memoryStorage } from '../../src/storage/memory.js'
import { describeStorageContract } from './contract.js'

describeStorageContract('memoryStorage', () => memoryStorage())
