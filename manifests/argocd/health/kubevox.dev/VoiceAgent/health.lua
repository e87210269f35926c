-- Argo CD health check for kubevox.dev/VoiceAgent, in the style of Argo CD's KServe checks.
-- The operator aggregates its children (worker Deployment, autoscaler: HPA or KEDA ScaledObject,
-- referenced Secrets and KnowledgeBases) into the Ready, Progressing and Degraded conditions;
-- this reads them. A Degraded autoscaler (missing, inactive, unable) makes the agent Degraded
-- though it still takes calls: nothing follows the call volume.
-- status.rollout follows a Canary rollout of a new configuration: Progressing while the canary
-- takes its share or is promoted, Degraded once it is aborted (or being rolled back), as the
-- configuration of the spec is then not the one that serves, though Ready stays True.
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

-- Numbers arrive as floats in Argo CD (gopher-lua): print 1, not 1.0, whatever the interpreter.
local function whole(n)
  return tostring(math.floor(n))
end

local rollout = obj.status.rollout
local function canary_message(text)
  local msg = "canary"
  if rollout.canaryHash ~= nil then
    msg = msg .. " of configuration " .. rollout.canaryHash
  end
  msg = msg .. " " .. text
  if rollout.message ~= nil and rollout.message ~= "" then
    msg = msg .. ": " .. rollout.message
  end
  return msg
end

if degraded ~= nil and degraded.status == "True" then
  health_status.status = "Degraded"
  health_status.message = describe(degraded, "Degraded")
  return health_status
end

-- An aborted canary leaves the stable configuration serving (Ready may well be True): the
-- configuration of the spec does not serve until the spec changes.
if rollout ~= nil and (rollout.phase == "Aborted" or rollout.phase == "Aborting") then
  health_status.status = "Degraded"
  if rollout.phase == "Aborted" then
    health_status.message = canary_message("aborted")
  else
    health_status.message = canary_message("aborting")
  end
  return health_status
end

if ready ~= nil and ready.status == "False" and (progressing == nil or progressing.status ~= "True") then
  health_status.status = "Degraded"
  health_status.message = describe(ready, "NotReady")
  return health_status
end

-- A canary under way: the new configuration takes only part of the calls yet.
if rollout ~= nil and rollout.phase == "Progressing" then
  local text = "at " .. whole(rollout.canaryWeight or 0) .. "%"
  if rollout.step ~= nil then
    text = text .. " (step " .. whole(rollout.step + 1) .. ")"
  end
  health_status.message = canary_message(text)
  return health_status
end
if rollout ~= nil and rollout.phase == "Promoting" then
  local msg = "promoting the canary"
  if rollout.canaryHash ~= nil then
    msg = "promoting configuration " .. rollout.canaryHash
  end
  if rollout.message ~= nil and rollout.message ~= "" then
    msg = msg .. ": " .. rollout.message
  end
  health_status.message = msg
  return health_status
end

if ready ~= nil and ready.status == "True" then
  health_status.status = "Healthy"
  health_status.message = describe(ready, "Ready")
  return health_status
end

-- Ready Unknown, not reported yet, or False while a rollout is under way.
if progressing ~= nil and progressing.status == "True" then
  health_status.message = describe(progressing, "Progressing")
elseif ready ~= nil then
  health_status.message = describe(ready, "Waiting")
end
return health_status
