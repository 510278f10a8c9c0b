module.exports = { ...require("../../jest.preset.js"), displayName: "identity-merge", rootDir: __dirname };
