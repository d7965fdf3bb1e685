// Adapter only: point jest at the end-to-end suite that @confluentinc/schemaregistry publishes in its npm
// package (dist/e2e/*.spec.js). Nothing of that suite is copied or edited; it reaches Freight's registry at
// http://localhost:8081 and the broker at localhost:9092, the addresses the suite itself names.
module.exports = {
  rootDir: __dirname,
  roots: ['<rootDir>/node_modules/@confluentinc/schemaregistry/dist/e2e'],
  testMatch: ['**/*.spec.js'],
  testPathIgnorePatterns: [],
  haste: { retainAllFiles: true },
  testEnvironment: 'node',
  maxWorkers: 1,
};
