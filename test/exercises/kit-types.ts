// Compile-time half of `npm run check:kit`: every exercise module exports exactly the solution's
// values and types (typecheck fails here otherwise). Add a block per exercise set.
import type * as QuantEx from "../../exercises/quantization/index.ts";
import type * as QuantSol from "../../solutions/quantization/index.ts";
import type * as ServingEx from "../../exercises/serving/index.ts";
import type * as ServingSol from "../../solutions/serving/index.ts";
import type * as SpecEx from "../../exercises/speculative/index.ts";
import type * as SpecSol from "../../solutions/speculative/index.ts";

/** true only when A and B are the same type (mutual assignability is too weak for functions). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export const quantizationKit: [
  Same<typeof QuantEx, typeof QuantSol>,
  Same<QuantEx.ServingConfig, QuantSol.ServingConfig>,
  Same<QuantEx.MemoryPlan, QuantSol.MemoryPlan>,
  Same<QuantEx.FitVerdict, QuantSol.FitVerdict>,
  Same<QuantEx.LevelMeasurement, QuantSol.LevelMeasurement>,
  Same<QuantEx.LevelChoice, QuantSol.LevelChoice>,
  Same<QuantEx.QuizAnswers, QuantSol.QuizAnswers>,
  Same<QuantEx.Choice, QuantSol.Choice>,
] = [true, true, true, true, true, true, true, true];

export const speculativeKit: [
  Same<typeof SpecEx, typeof SpecSol>,
  Same<SpecEx.Distribution, SpecSol.Distribution>,
  Same<SpecEx.OneTokenVerdict, SpecSol.OneTokenVerdict>,
  Same<SpecEx.VerifyInput, SpecSol.VerifyInput>,
  Same<SpecEx.VerifyResult, SpecSol.VerifyResult>,
  Same<SpecEx.KChoice, SpecSol.KChoice>,
  Same<SpecEx.NgramOptions, SpecSol.NgramOptions>,
  Same<SpecEx.QuizAnswers, SpecSol.QuizAnswers>,
  Same<SpecEx.Choice, SpecSol.Choice>,
] = [true, true, true, true, true, true, true, true, true];

export const servingKit: [
  Same<typeof ServingEx, typeof ServingSol>,
  Same<ServingEx.BlockHashFn, ServingSol.BlockHashFn>,
  Same<ServingEx.IndexedBlock, ServingSol.IndexedBlock>,
  Same<ServingEx.BlockHashIndex, ServingSol.BlockHashIndex>,
  Same<ServingEx.QueueNode, ServingSol.QueueNode>,
  Same<ServingEx.FreeBlockQueue, ServingSol.FreeBlockQueue>,
  Same<ServingEx.BlockPool, ServingSol.BlockPool>,
  Same<ServingEx.RadixTreeNode, ServingSol.RadixTreeNode>,
  Same<ServingEx.RadixDump, ServingSol.RadixDump>,
  Same<ServingEx.RadixTree, ServingSol.RadixTree>,
] = [true, true, true, true, true, true, true, true, true, true];

// Tasks 3.4–3.5 (batching and serving): their types; the serving index above covers their values.
import type * as StepEx from "../../exercises/serving/scheduler-step.ts";
import type * as StepSol from "../../solutions/serving/scheduler-step.ts";
import type * as ScaleOutEx from "../../exercises/serving/scale-out.ts";
import type * as ScaleOutSol from "../../solutions/serving/scale-out.ts";

export const batchingKit: [
  Same<typeof StepEx, typeof StepSol>,
  Same<StepEx.StepRequest, StepSol.StepRequest>,
  Same<StepEx.StepInput, StepSol.StepInput>,
  Same<StepEx.ScheduledRequest, StepSol.ScheduledRequest>,
  Same<StepEx.StepPlan, StepSol.StepPlan>,
  Same<typeof ScaleOutEx, typeof ScaleOutSol>,
  Same<ScaleOutEx.LittleQuantities, ScaleOutSol.LittleQuantities>,
  Same<ScaleOutEx.TraceRequest, ScaleOutSol.TraceRequest>,
  Same<ScaleOutEx.ClosedLoopPoint, ScaleOutSol.ClosedLoopPoint>,
  Same<ScaleOutEx.OperatingPoint, ScaleOutSol.OperatingPoint>,
] = [true, true, true, true, true, true, true, true, true, true];

// Tasks 3.6–3.10 (capacity planning), module by module: the serving index above covers their values.
import type * as CapEx from "../../exercises/serving/capacity.ts";
import type * as CapSol from "../../solutions/serving/capacity.ts";
import type * as ScaleEx from "../../exercises/serving/autoscaler.ts";
import type * as ScaleSol from "../../solutions/serving/autoscaler.ts";
import type * as CapQuizEx from "../../exercises/serving/capacity-quiz.ts";
import type * as CapQuizSol from "../../solutions/serving/capacity-quiz.ts";

export const capacityKit: [
  Same<typeof CapEx, typeof CapSol>,
  Same<CapEx.ModelShape, CapSol.ModelShape>,
  Same<CapEx.TpConfig, CapSol.TpConfig>,
  Same<CapEx.TpMemoryPlan, CapSol.TpMemoryPlan>,
  Same<CapEx.Roofline, CapSol.Roofline>,
  Same<CapEx.PhaseTime, CapSol.PhaseTime>,
  Same<CapEx.LatencyRequest, CapSol.LatencyRequest>,
  Same<CapEx.RequestLatency, CapSol.RequestLatency>,
  Same<CapEx.DeploymentOption, CapSol.DeploymentOption>,
  Same<CapEx.Slo, CapSol.Slo>,
  Same<CapEx.Load, CapSol.Load>,
  Same<CapEx.DeploymentChoice, CapSol.DeploymentChoice>,
  Same<typeof ScaleEx, typeof ScaleSol>,
  Same<ScaleEx.AutoscalerInput, ScaleSol.AutoscalerInput>,
  Same<ScaleEx.AutoscalerRun, ScaleSol.AutoscalerRun>,
  Same<typeof CapQuizEx, typeof CapQuizSol>,
  Same<CapQuizEx.CapacityQuizAnswers, CapQuizSol.CapacityQuizAnswers>,
  Same<CapQuizEx.CapacityChoice, CapQuizSol.CapacityChoice>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true];
