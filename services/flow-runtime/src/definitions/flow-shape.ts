import { DelayUnit, EdgePort, type Block, type DelayBlock, type Flow } from "@chatcrm/contracts/chatcrm/flows/v1/flow_pb";

const UNIT_MS: Record<DelayUnit, number> = {
  [DelayUnit.UNSPECIFIED]: 0,
  [DelayUnit.SECONDS]: 1000,
  [DelayUnit.MINUTES]: 60_000,
  [DelayUnit.HOURS]: 3_600_000,
  [DelayUnit.DAYS]: 86_400_000,
};

export const delayMs = (d: DelayBlock) => Number(d.amount) * (UNIT_MS[d.unit] ?? 0);

/** A stored flow version with its blocks and edges indexed for the engine. */
export class FlowShape {
  private readonly blocks: Map<string, Block>;

  constructor(readonly flow: Flow) {
    this.blocks = new Map(flow.blocks.map((b) => [b.blockId, b]));
  }

  block(id: string): Block | undefined {
    return this.blocks.get(id);
  }

  /** Blocks an edge from `blockId` by `port` leads to, in edge order; for BUTTON only the button's edges. */
  targets(blockId: string, port: EdgePort, buttonPayload = ""): string[] {
    return this.flow.edges.filter((e) => e.fromBlockId === blockId && e.port === port && (port !== EdgePort.BUTTON || e.buttonPayload === buttonPayload)).map((e) => e.toBlockId);
  }
}
