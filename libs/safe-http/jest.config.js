module.exports = { ...require("../../jest.preset.js"), displayName: "safe-http", rootDir: __dirname };
