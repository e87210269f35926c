-- Argo CD health check for kubevox.dev/VoiceAgent, in the style of Argo CD's KServe checks.
-- The operator aggregates its children (worker Deployment, autoscaler: HPA or KEDA ScaledObject,
-- referenced Secrets and KnowledgeBases) into the Ready, Progressing and Degraded conditions;
-- this reads them. A Degraded autoscaler (missing, inactive, unable) makes the agent Degraded
-- though it still takes calls: nothing follows the call volume.
local health_status = {}
health_status.status = "Progressing"
health_status.message = "Waiting for VoiceAgent to report status..."

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  health_status.message = "VoiceAgent is being deleted"
  return health_status
end

if obj.status == nil or obj.status.conditions == nil then
  return health_status
end

local ready = nil
local progressing = nil
local degraded = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Progressing" then
    progressing = condition
  elseif condition.type == "Degraded" then
    degraded = condition
  end
end

-- A status computed from an older spec says nothing about the current one.
local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil then
  local stale = obj.status.observedGeneration == nil or obj.status.observedGeneration ~= generation
  if ready ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration ~= generation then
    stale = true
  end
  if stale then
    health_status.message = "Waiting for the operator to observe generation " .. tostring(generation)
    return health_status
  end
end

local function describe(condition, fallback)
  local msg = fallback
  if condition ~= nil then
    msg = condition.reason or fallback
    if condition.message ~= nil and condition.message ~= "" then
      msg = msg .. ": " .. condition.message
    end
  end
  return msg
end

if degraded ~= nil and degraded.status == "True" then
  health_status.status = "Degraded"
  health_status.message = describe(degraded, "Degraded")
  return health_status
end

if ready ~= nil and ready.status == "True" then
  health_status.status = "Healthy"
  health_status.message = describe(ready, "Ready")
  return health_status
end

if ready ~= nil and ready.status == "False" and (progressing == nil or progressing.status ~= "True") then
  health_status.status = "Degraded"
  health_status.message = describe(ready, "NotReady")
  return health_status
end

-- Ready Unknown, not reported yet, or False while a rollout is under way.
if progressing ~= nil and progressing.status == "True" then
  health_status.message = describe(progressing, "Progressing")
elseif ready ~= nil then
  health_status.message = describe(ready, "Waiting")
end
return health_status
