-- Argo CD health check for kubevox.dev/KnowledgeBase, in the style of Argo CD's KServe checks.
-- status.phase is Pending, Indexing, Ready or Failed; the Ready condition says whether an
-- index answers queries. A failed ingestion is Degraded even while the previous index answers.
local health_status = {}
health_status.status = "Progressing"
health_status.message = "Waiting for KnowledgeBase to report status..."

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  health_status.message = "KnowledgeBase is being deleted"
  return health_status
end

if obj.status == nil then
  return health_status
end

local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end

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

local phase = obj.status.phase
if phase == "Failed" then
  health_status.status = "Degraded"
  health_status.message = describe(ready, "IngestionFailed")
  if ready ~= nil and ready.status == "True" then
    health_status.message = "Last ingestion failed; the previous index still answers"
  end
  return health_status
end

if ready ~= nil and ready.status == "True" and phase ~= "Indexing" and phase ~= "Pending" then
  health_status.status = "Healthy"
  local chunks = obj.status.chunks or 0
  local documents = obj.status.documents or 0
  health_status.message = tostring(chunks) .. " chunks from " .. tostring(documents) .. " documents indexed"
  return health_status
end

if phase == "Indexing" or phase == "Pending" or phase == nil then
  if phase ~= nil then
    health_status.message = "KnowledgeBase is " .. phase
  end
  return health_status
end

-- Phase Ready (or unknown) while the Ready condition is not True.
if ready ~= nil and ready.status == "False" then
  health_status.status = "Degraded"
  health_status.message = describe(ready, "NotReady")
end
return health_status
