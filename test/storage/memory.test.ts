import { memoryStorage } from '../../src/storage/memory.js'
import { describeClientPersistence, describeStorageContract } from './contract.js'

describeStorageContract('memoryStorage', () => memoryStorage())
describeClientPersistence('memoryStorage', () => memoryStorage())
