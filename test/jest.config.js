// System tests run the built services (dist/services/*/main.js) as real processes against the harness.
module.exports = { ...require("../jest.preset.js"), displayName: "system-tests", rootDir: __dirname, testTimeout: 120_000 };
