module.exports = { ...require("../../jest.preset.js"), displayName: "flow-runtime", rootDir: __dirname };
