module.exports = { ...require("../../jest.preset.js"), displayName: "messenger-ids", rootDir: __dirname };
