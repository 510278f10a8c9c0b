module.exports = { ...require("../../jest.preset.js"), displayName: "integrations", rootDir: __dirname };
